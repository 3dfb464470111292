/* nsexec: namespaces before .NET starts (see DESIGN.md, "Process model"); native/initexec.c, called
 * at its end, is the container init's op executor.
 *
 * A user namespace can only be created by a single-threaded process, and a NativeAOT process has
 * threads by the time Main runs. This constructor runs before the .NET runtime starts. It is
 * decision-free: the runtime (C#) computes the plan and passes it in the environment as
 *
 *     _BERTH_NSEXEC=<sync fd>:<clone flags, hex>[:<namespace path>,<namespace path>...]
 *
 * and, for a new time namespace, _BERTH_NSEXEC_TIME=<text for /proc/self/timens_offsets> (may be
 * empty), and this code only carries it out:
 *   0. setns() into each listed namespace, in the order given (exec: the container's user
 *      namespace first, then the others);
 *   0b. with _BERTH_NSEXEC_TIME and no CLONE_NEWUSER: unshare(CLONE_NEWTIME) and write the
 *      offsets, which the kernel accepts only before any process lives in the new namespace: the
 *      child cloned next is the first (a time namespace applies to children, time_for_children);
 *   1. clone(flags | SIGCHLD): the child is born in every requested new namespace at once;
 *   2. the intermediate (parent) sends "pid:<child pid>" on the sync fd and exits 0;
 *   3. the child waits for "maps-done" (the runtime writes uid_map/gid_map meanwhile), becomes
 *      root of its user namespace (setresgid, setgroups, setresuid) and goes on to
 *      native/initexec.c, which runs `berth-runc init`'s plan on the same sync fd (or returns,
 *      for an exec'd process, so that .NET starts).
 * With CLONE_NEWUSER and _BERTH_NSEXEC_TIME the time namespace must belong to the new user
 * namespace (runc's order; a rootless caller can create it nowhere else), so there are two clones:
 * step 1 clones only the user namespace; after step 3 that child unshares CLONE_NEWTIME, writes
 * the offsets, clones init with the other flags (CLONE_PARENT: the runtime's child, born in the
 * new pid namespace), sends "pid:<init pid>" and exits 0.
 * Any failure sends "error:<what>: <strerror>" on the sync fd and exits 1.
 * Without _BERTH_NSEXEC (every ordinary command) it goes straight to initexec, which returns at
 * once unless this is a container's init.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NSEXEC_ENV "_BERTH_NSEXEC"
#define NSEXEC_TIME_ENV "_BERTH_NSEXEC_TIME"

static void send_packet(int fd, const char *msg)
{
    ssize_t r;
    do r = send(fd, msg, strlen(msg), MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
}

static void fail(int fd, const char *what)
{
    char buf[256];
    int e = errno;
    snprintf(buf, sizeof buf, "error:nsexec: %s: %s", what, strerror(e));
    if (fd >= 0) send_packet(fd, buf);
    else { fputs(buf, stderr); fputc('\n', stderr); }
    _exit(1);
}

/* unshare(CLONE_NEWTIME) and set its offsets (only possible while no process lives in it). */
static void new_time_namespace(int fd, const char *offsets)
{
    if (unshare(CLONE_NEWTIME) != 0) fail(fd, "unshare(CLONE_NEWTIME)");
    size_t len = strlen(offsets);
    if (len == 0) return;
    int tfd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
    if (tfd < 0) fail(fd, "open /proc/self/timens_offsets");
    if (write(tfd, offsets, len) != (ssize_t)len) fail(fd, "write /proc/self/timens_offsets");
    close(tfd);
}

/* clone(flags | SIGCHLD): the parent sends "pid:<child pid>" on the sync fd and exits 0; the child
 * returns. */
static void clone_or_report(int fd, unsigned long flags)
{
    long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (pid < 0) fail(fd, "clone");
    if (pid > 0) {
        char msg[32];
        snprintf(msg, sizeof msg, "pid:%ld", pid);
        send_packet(fd, msg);
        _exit(0);
    }
}

/* native/initexec.c: `berth-runc init` carried out without .NET (returns when not asked for). */
void berth_initexec(void);

__attribute__((constructor)) static void berth_nsexec(void)
{
    const char *plan = getenv(NSEXEC_ENV);
    if (plan == NULL) { berth_initexec(); return; }

    char *end = NULL;
    errno = 0;
    long fd = strtol(plan, &end, 10);
    if (errno != 0 || end == plan || *end != ':' || fd < 0 || fd > 1 << 20) { errno = EINVAL; fail(-1, "bad " NSEXEC_ENV); }
    const char *hex = end + 1;
    unsigned long flags = strtoul(hex, &end, 16);
    if (end == hex || (*end != '\0' && *end != ':')) { errno = EINVAL; fail((int)fd, "bad clone flags in " NSEXEC_ENV); }

    /* Namespaces to join, comma-separated (unsetenv below frees nothing: getenv's string stays). */
    if (*end == ':') {
        char paths[4096];
        if (strlen(end + 1) >= sizeof paths) { errno = ENAMETOOLONG; fail((int)fd, "namespace paths"); }
        strcpy(paths, end + 1);
        /* Open them all first: once in the container's user namespace, its /proc/PID/ns files
         * may no longer be ours to open. */
        int nsfds[16];
        const char *names[16];
        int count = 0;
        for (char *save = NULL, *p = strtok_r(paths, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save)) {
            if (count == 16) { errno = E2BIG; fail((int)fd, "namespace paths"); }
            names[count] = p;
            nsfds[count] = open(p, O_RDONLY | O_CLOEXEC);
            if (nsfds[count] < 0) fail((int)fd, p);
            count++;
        }
        for (int i = 0; i < count; i++) {
            if (setns(nsfds[i], 0) != 0) {
                char what[4200];
                snprintf(what, sizeof what, "setns %s", names[i]);
                fail((int)fd, what);
            }
            close(nsfds[i]);
        }
    }
    const char *offsets = getenv(NSEXEC_TIME_ENV);
    int two_stage = offsets != NULL && (flags & CLONE_NEWUSER) != 0;
    if (offsets != NULL && !two_stage) new_time_namespace((int)fd, offsets);
    /* Not for init's own children (hooks, the container's process). */
    unsetenv(NSEXEC_ENV);
    unsetenv(NSEXEC_TIME_ENV);

    unsigned long first = two_stage ? flags & (CLONE_NEWUSER | CLONE_PARENT) : flags;
    clone_or_report((int)fd, first);

    /* The child: born in the new namespaces, uid/gid unmapped until the runtime writes the maps. */
    char buf[64];
    ssize_t n;
    do n = recv((int)fd, buf, sizeof buf - 1, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) fail((int)fd, "waiting for the id maps");
    if (n == 0) _exit(1); /* the runtime went away */
    buf[n] = '\0';
    if (strcmp(buf, "maps-done") != 0) { errno = EPROTO; fail((int)fd, "unexpected message while waiting for the id maps"); }

    if (setresgid(0, 0, 0) != 0) fail((int)fd, "setresgid(0)");
    /* EPERM when setgroups is denied in this namespace: then there are no groups to drop anyway. */
    if (setgroups(0, NULL) != 0 && errno != EPERM) fail((int)fd, "setgroups");
    if (setresuid(0, 0, 0) != 0) fail((int)fd, "setresuid(0)");

    if (two_stage) {
        new_time_namespace((int)fd, offsets);
        clone_or_report((int)fd, (flags & ~(unsigned long)CLONE_NEWUSER) | CLONE_PARENT);
    }
    berth_initexec();
}
