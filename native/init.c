/* berth-init: the PID 1 of a container run with --init (docker's tini, podman's catatonit).
 *
 * Built as a small static executable (no loader or libc needed in the image), embedded in the
 * `berth` binary (native/init-image.c) and bind-mounted read-only at /dev/init by the engine,
 * which makes the container's process `/dev/init -- COMMAND ARGS...`. It is a freshly exec'd,
 * single-threaded process, so it can block every signal and take them with sigtimedwait:
 *   - the command runs as its child in its own process group (the terminal's foreground group
 *     when stdin is a terminal), with the signal mask and dispositions it would have had;
 *   - every signal PID 1 receives (SIGTERM from `stop`, `kill -s USR1`, ...) is sent on to the
 *     child; SIGCHLD reaps every exited process (orphans are reparented to PID 1);
 *   - when the child exits, its status is PID 1's: the exit code, or 128+N when killed by N.
 * It makes no decisions beyond that; the engine decides when it runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void say(const char *a, const char *b, const char *c)
{
    /* One line on stderr, written at once. */
    char buf[512];
    int n = snprintf(buf, sizeof buf, "berth-init: %s%s%s\n", a, b, c);
    if (n > 0) { ssize_t r = write(2, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1); (void)r; }
}

/* Signals that stay unblocked: synchronous faults must kill us, not wait in the queue. */
static const int keep[] = { SIGFPE, SIGILL, SIGSEGV, SIGBUS, SIGABRT, SIGTRAP, SIGSYS, SIGTTIN, SIGTTOU };

int main(int argc, char **argv)
{
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "--") == 0) first = 2;
    if (first >= argc) { say("usage: berth-init -- COMMAND [ARG...]", "", ""); return 125; }

    sigset_t all, old;
    sigfillset(&all);
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) sigdelset(&all, keep[i]);
    if (sigprocmask(SIG_SETMASK, &all, &old) != 0) { say("sigprocmask: ", strerror(errno), ""); return 125; }

    pid_t child = fork();
    if (child < 0) { say("fork: ", strerror(errno), ""); return 125; }
    if (child == 0) {
        /* Own process group; the terminal's foreground group when stdin is one (as tini). */
        if (setpgid(0, 0) == 0 && isatty(0)) {
            struct sigaction ign = { .sa_handler = SIG_IGN }, prev;
            sigaction(SIGTTOU, &ign, &prev);
            if (tcsetpgrp(0, getpid()) != 0 && errno != ENOTTY && errno != ENXIO) say("tcsetpgrp: ", strerror(errno), "");
            sigaction(SIGTTOU, &prev, NULL);
        }
        sigprocmask(SIG_SETMASK, &old, NULL);
        execvp(argv[first], argv + first);
        int e = errno;
        say("exec ", argv[first], e == ENOENT ? ": no such file or directory" : e == EACCES ? ": permission denied" : ": exec failed");
        _exit(e == ENOENT ? 127 : e == EACCES ? 126 : 125);
    }

    for (;;) {
        struct timespec tick = { 1, 0 };
        siginfo_t si;
        int sig = sigtimedwait(&all, &si, &tick);
        if (sig < 0) {
            if (errno != EAGAIN && errno != EINTR) { say("sigtimedwait: ", strerror(errno), ""); return 125; }
        } else if (sig != SIGCHLD) {
            if (kill(child, sig) != 0 && errno != ESRCH) say("kill: ", strerror(errno), "");
            continue;
        }
        /* Reap every exited process; the child's status ends us. */
        for (;;) {
            int status;
            pid_t p = waitpid(-1, &status, WNOHANG);
            if (p <= 0) break;
            if (p == child) {
                /* Collect what else has already exited, then leave: the kernel kills the rest. */
                while (waitpid(-1, NULL, WNOHANG) > 0) {}
                if (WIFEXITED(status)) return WEXITSTATUS(status);
                if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
                return 125;
            }
        }
    }
}
