/* berth-monitor: the steady state of a container's monitor (berth-shim).
 *
 * The .NET berth-shim starts the container (record, networks, berth-runc create/start, subreaper,
 * stdio pipes or the pty, the control socket) and then execve()s this small static program, which
 * keeps its pid, its subreaper role and the descriptors it is handed. It only carries things out:
 *   - relays the container's stdout/stderr into the json-file log (docker's format, as the engine
 *     reads it back: one JSON object per line, partial lines up to 16 KiB, max-size/max-file
 *     rotation) and to attached clients; answers the starter (--report) and holds the output for its
 *     attach (--hold);
 *   - serves the control socket (src/Berth.Engine/Monitor/MonitorProtocol.cs: one request line,
 *     then frames [type][length BE32][payload]): attach, wait, kill, stop (with its SIGKILL
 *     deadline), resize; stdin from attached clients to the container;
 *   - reaps every child (SIGCHLD through a signalfd): the container's init, orphans, health checks;
 *   - every --health-interval ms while the container runs, spawns `berth-shim --health` (C# runs
 *     the check and records the result).
 * Every decision stays in C#: when the container has exited (or, with --wait, a restart back-off
 * is over or a stop came during it), it execs berth-shim --resume (the berth binary, --exec-fd)
 * with the listener, the clients and the exit status, and C# records, restarts or finishes.
 *
 * usage: berth-shim --exec-fd FD --listener FD (--pid PID | --wait MS --exit CODE)
 *          [--stdout FD] [--stderr FD] [--pty FD] [--stdin FD] [--starter FD --report LINE [--hold 1]]
 *          [--log PATH --log-max-size BYTES --log-max-file N] [--health-interval MS]
 *          [--clients SPEC] -- BERTH-SHIM-ARGV...
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum { T_STDOUT = 1, T_STDERR = 2, T_EXIT = 3, T_OK = 4, T_ERROR = 5 };
enum { BUF = 16384, MAX_PARTIAL = 16384, MAX_HELD = 4 << 20, MAX_LINE = 1024, DRAIN_MS = 2000 };
/* client flags; also the handover format (see clients_spec) */
enum { C_ATTACHED = 1, C_STDIN = 2, C_STDOUT = 4, C_STDERR = 8, C_WAITER = 16, C_INPUT_DONE = 32, C_KEEP = 64, C_REQUEST = 128 };

struct client { int fd; unsigned flags; int len; char line[MAX_LINE]; };
struct bytes { char *p; size_t len, cap; };

static int listener = -1, out[3] = { -1, -1, -1 }, pty = -1, stdin_w = -1, starter = -1, sigfd = -1, exec_fd = -1;
static pid_t init_pid, health_pid;
static int exit_code = -1, stop_requested, holding, stdin_eof_requested, health_killed;
static long long drain_deadline, stop_deadline = INT64_MAX, wait_deadline = INT64_MAX, health_due = INT64_MAX, health_interval;
static struct client **clients;
static int nclients;
static struct bytes held, stdin_pending, partial[3];
static const char *log_path;
static int log_fd = -1, log_max_file = 1;
static long long log_size, log_max_size = -1;
static char **shim_argv;
static int shim_argc;
static unsigned char buf[BUF];

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void say(const char *what, int err)
{
    char m[512];
    int n = snprintf(m, sizeof m, "berth-shim: %s: %s\n", what, strerror(err));
    if (n > 0) { ssize_t r = write(2, m, (size_t)n < sizeof m ? (size_t)n : sizeof m - 1); (void)r; }
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) { say("out of memory", ENOMEM); _exit(1); }
    return q;
}

static void append(struct bytes *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) { b->cap = (b->len + n) * 2; b->p = xrealloc(b->p, b->cap); }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void drop(struct bytes *b) { free(b->p); b->p = NULL; b->len = b->cap = 0; }

static void cloexec(int fd, int on)
{
    if (fd >= 0) fcntl(fd, F_SETFD, on ? FD_CLOEXEC : 0);
}

static void closefd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* ------------------------------------------------------------------ json-file log */

/* One code point of UTF-8 at s (n > 0 bytes): its length in *len; U+FFFD for each maximal
 * ill-formed subpart, as .NET's and Go's decoders replace them. */
static unsigned utf8(const unsigned char *s, size_t n, size_t *len)
{
    unsigned c = s[0], cp, lo = 0x80, hi = 0xBF;
    size_t need, i;
    if (c < 0x80) { *len = 1; return c; }
    if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; if (c == 0xE0) lo = 0xA0; else if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; if (c == 0xF0) lo = 0x90; else if (c == 0xF4) hi = 0x8F; }
    else { *len = 1; return 0xFFFD; }
    for (i = 1; i <= need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) { *len = i; return 0xFFFD; }
        cp = (cp << 6) | (s[i] & 0x3F);
        lo = 0x80; hi = 0xBF;
    }
    *len = i;
    return cp;
}

/* The escaped form of text as a JSON string body into dst (when not NULL); returns its length. */
static size_t escape(const unsigned char *s, size_t n, char *dst)
{
    size_t o = 0, i = 0, l;
    while (i < n) {
        unsigned cp = utf8(s + i, n - i, &l);
        const char *e = NULL;
        char u[7];
        size_t el = 0;
        switch (cp) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        default:
            if (cp < 0x20) { snprintf(u, sizeof u, "\\u%04x", cp); e = u; el = 6; }
            else if (cp == 0xFFFD && !(l == 3 && s[i] == 0xEF)) { e = "\xEF\xBF\xBD"; }
        }
        if (e) { if (!el) el = strlen(e); if (dst) memcpy(dst + o, e, el); o += el; }
        else { if (dst) memcpy(dst + o, s + i, l); o += l; }
        i += l;
    }
    return o;
}

static void log_open(int trunc)
{
    struct stat st;
    log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (trunc ? O_TRUNC : 0), 0640);
    if (log_fd < 0) { say(log_path, errno); return; }
    log_size = fstat(log_fd, &st) == 0 ? st.st_size : 0;
}

/* NAME → NAME.1 → … → NAME.(max-file − 1); a fresh NAME. */
static void log_rotate(void)
{
    char from[4096], to[4096];
    closefd(&log_fd);
    for (int i = log_max_file - 1; i >= 1; i--) {
        if (i == 1) snprintf(from, sizeof from, "%s", log_path);
        else snprintf(from, sizeof from, "%s.%d", log_path, i - 1);
        snprintf(to, sizeof to, "%s.%d", log_path, i);
        if (access(from, F_OK) == 0 && rename(from, to) != 0) say(to, errno);
    }
    log_open(1);
}

static void log_flush(int stream)
{
    struct bytes *b = &partial[stream];
    if (!log_path || b->len == 0) return;
    struct timespec t;
    struct tm tm;
    char head[] = "{\"log\":\"", tail[96];
    clock_gettime(CLOCK_REALTIME, &t);
    gmtime_r(&t.tv_sec, &tm);
    int tl = snprintf(tail, sizeof tail, "\",\"stream\":\"%s\",\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%07ld00Z\"}\n",
        stream == 1 ? "stdout" : "stderr", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, t.tv_nsec / 100);
    size_t body = escape((unsigned char *)b->p, b->len, NULL), len = sizeof head - 1 + body + (size_t)tl;
    char *line = xrealloc(NULL, len);
    memcpy(line, head, sizeof head - 1);
    escape((unsigned char *)b->p, b->len, line + sizeof head - 1);
    memcpy(line + sizeof head - 1 + body, tail, (size_t)tl);
    b->len = 0;
    if (log_max_size > 0 && log_size + (long long)len > log_max_size && log_size > 0) log_rotate();
    for (size_t off = 0; log_fd >= 0 && off < len;) {
        ssize_t w = write(log_fd, line + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { say(log_path, errno); break; }
        off += (size_t)w;
    }
    log_size += (long long)len;
    free(line);
    if (b->cap > 4096) drop(b); /* a long line's buffer goes back after it */
}

static void log_write(int stream, const unsigned char *p, size_t n)
{
    struct bytes *b = &partial[stream];
    while (n > 0) {
        const unsigned char *nl = memchr(p, '\n', n);
        if (!nl) {
            append(b, p, n);
            if (b->len >= MAX_PARTIAL) log_flush(stream);
            return;
        }
        append(b, p, (size_t)(nl - p) + 1);
        log_flush(stream);
        n -= (size_t)(nl - p) + 1;
        p = nl + 1;
    }
}

/* ------------------------------------------------------------------ clients */

static void client_close(struct client *c)
{
    closefd(&c->fd);
}

/* Blocking send of one frame (a slow client slows the container's output, as before). */
static void send_frame(struct client *c, int type, const void *p, size_t n)
{
    unsigned char h[5] = { (unsigned char)type, (unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n };
    struct iovec iov[2] = { { h, 5 }, { (void *)p, n } };
    size_t left = 5 + n;
    if (c->fd < 0) return;
    while (left > 0) {
        struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { client_close(c); return; }
        left -= (size_t)w;
        for (int i = 0; i < 2; i++) {
            size_t k = (size_t)w < iov[i].iov_len ? (size_t)w : iov[i].iov_len;
            iov[i].iov_base = (char *)iov[i].iov_base + k;
            iov[i].iov_len -= k;
            w -= (ssize_t)k;
        }
    }
}

static void reply(struct client *c, int type, const char *msg)
{
    send_frame(c, type, msg, strlen(msg));
    client_close(c);
}

static struct client *client_add(int fd, unsigned flags)
{
    struct client *c = xrealloc(NULL, sizeof *c);
    c->fd = fd; c->flags = flags; c->len = 0;
    clients = xrealloc(clients, sizeof *clients * (size_t)(nclients + 1));
    clients[nclients++] = c;
    return c;
}

static int running(void) { return init_pid > 0 && exit_code < 0; }

static void close_stdin(void) { closefd(&stdin_w); }

static void flush_stdin(int fd)
{
    ssize_t n = write(fd, stdin_pending.p, stdin_pending.len);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        stdin_pending.len = 0; /* the container closed its stdin */
        return;
    }
    memmove(stdin_pending.p, stdin_pending.p + n, stdin_pending.len - (size_t)n);
    stdin_pending.len -= (size_t)n;
    if (stdin_pending.len == 0 && stdin_eof_requested) close_stdin();
}

static void stop_holding(void)
{
    drop(&held);
    holding = 0;
    closefd(&starter);
}

/* Signal names as Berth.Linux.Signals.Parse reads them: a number 1–64, NAME or SIGNAME, RTMIN±N, RTMAX±N. */
static int parse_signal(const char *s, char *err, size_t errlen)
{
    static const struct { const char *n; int v; } names[] = {
        { "HUP", 1 }, { "INT", 2 }, { "QUIT", 3 }, { "ILL", 4 }, { "TRAP", 5 }, { "ABRT", 6 }, { "IOT", 6 }, { "BUS", 7 },
        { "FPE", 8 }, { "KILL", 9 }, { "USR1", 10 }, { "SEGV", 11 }, { "USR2", 12 }, { "PIPE", 13 }, { "ALRM", 14 },
        { "TERM", 15 }, { "STKFLT", 16 }, { "CHLD", 17 }, { "CLD", 17 }, { "CONT", 18 }, { "STOP", 19 }, { "TSTP", 20 },
        { "TTIN", 21 }, { "TTOU", 22 }, { "URG", 23 }, { "XCPU", 24 }, { "XFSZ", 25 }, { "VTALRM", 26 }, { "PROF", 27 },
        { "WINCH", 28 }, { "IO", 29 }, { "POLL", 29 }, { "PWR", 30 }, { "SYS", 31 },
    };
    char *end;
    long v = strtol(s, &end, 10);
    if (*s && *end == 0) {
        if (v >= 1 && v <= 64) return (int)v;
        snprintf(err, errlen, "invalid signal \"%s\"", s);
        return -1;
    }
    const char *name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i].n) == 0) return names[i].v;
    if (strncasecmp(name, "RTMIN", 5) == 0 || strncasecmp(name, "RTMAX", 5) == 0) {
        long off = name[5] ? strtol(name + 5, &end, 10) : 0;
        long r = (strncasecmp(name, "RTMIN", 5) == 0 ? 34 : 64) + off;
        if ((!name[5] || *end == 0) && r >= 34 && r <= 64) return (int)r;
    }
    snprintf(err, errlen, "unknown signal \"%s\"", s);
    return -1;
}

static int parse_uint(const char *s, long max, long *v)
{
    char *end;
    if (!s || !*s) return 0;
    *v = strtol(s, &end, 10);
    return *end == 0 && *v >= 0 && *v <= max;
}

/* One request line (MonitorProtocol): attach I O E [keep], wait, kill SIG, stop SIG TIMEOUT, resize R C. */
static void handle(struct client *c)
{
    char line[MAX_LINE + 1], *w[6] = { 0 }, *save = NULL, err[MAX_LINE + 64];
    int n = 0, sig;
    long a, b;
    memcpy(line, c->line, (size_t)c->len);
    line[c->len] = 0;
    for (char *t = strtok_r(line, " ", &save); t && n < 6; t = strtok_r(NULL, " ", &save)) w[n++] = t;
    c->flags |= C_REQUEST;
    if (n == 0) goto unknown;
    if (strcmp(w[0], "attach") == 0) {
        c->flags |= C_ATTACHED;
        if (w[1] && strcmp(w[1], "1") == 0 && (stdin_w >= 0 || pty >= 0)) c->flags |= C_STDIN;
        if (!w[2] || strcmp(w[2], "0") != 0) c->flags |= C_STDOUT;
        if (!w[3] || strcmp(w[3], "0") != 0) c->flags |= C_STDERR;
        if (w[4] && strcmp(w[4], "keep") == 0) c->flags |= C_KEEP;
        send_frame(c, T_OK, "", 0);
        if (holding) {
            for (size_t off = 0; off + 5 <= held.len;) {
                unsigned char *h = (unsigned char *)held.p + off;
                size_t len = (size_t)h[1] << 24 | (size_t)h[2] << 16 | (size_t)h[3] << 8 | h[4];
                if (c->flags & (h[0] == T_STDOUT ? C_STDOUT : C_STDERR)) send_frame(c, h[0], h + 5, len);
                off += 5 + len;
            }
            stop_holding();
        }
    } else if (strcmp(w[0], "wait") == 0) {
        c->flags |= C_WAITER;
    } else if (strcmp(w[0], "kill") == 0) {
        if (!running()) return reply(c, T_ERROR, "container is not running");
        if (!w[1]) return reply(c, T_ERROR, "kill: signal missing");
        if ((sig = parse_signal(w[1], err, sizeof err)) < 0) return reply(c, T_ERROR, err);
        kill(init_pid, sig);
        reply(c, T_OK, "");
    } else if (strcmp(w[0], "stop") == 0) {
        if (!w[1] || !w[2]) return reply(c, T_ERROR, "stop: signal and timeout expected");
        if ((sig = parse_signal(w[1], err, sizeof err)) < 0) return reply(c, T_ERROR, err);
        char *end;
        long t = strtol(w[2], &end, 10);
        if (*end) { snprintf(err, sizeof err, "invalid timeout \"%s\"", w[2]); return reply(c, T_ERROR, err); }
        c->flags |= C_WAITER;
        stop_requested = 1;
        if (running()) {
            kill(init_pid, t <= 0 ? SIGKILL : sig);
            if (t > 0 && now_ms() + t * 1000 < stop_deadline) stop_deadline = now_ms() + t * 1000;
        }
    } else if (strcmp(w[0], "resize") == 0) {
        if (!parse_uint(w[1], 65535, &a) || !parse_uint(w[2], 65535, &b)) {
            snprintf(err, sizeof err, "resize: invalid size \"%s %s\"", w[1] ? w[1] : "", w[2] ? w[2] : "");
            return reply(c, T_ERROR, err);
        }
        struct winsize ws = { .ws_row = (unsigned short)a, .ws_col = (unsigned short)b };
        if (pty >= 0 && ioctl(pty, TIOCSWINSZ, &ws) != 0) {
            snprintf(err, sizeof err, "ioctl(TIOCSWINSZ) failed: %s", strerror(errno));
            return reply(c, T_ERROR, err);
        }
        reply(c, T_OK, "");
    } else {
    unknown:
        snprintf(err, sizeof err, "unknown request \"%s\"", c->line);
        reply(c, T_ERROR, err);
    }
}

static void read_client(struct client *c)
{
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
        /* End of the client's input: for an attached stdin, the container's stdin ends too. */
        if (!(c->flags & C_ATTACHED)) { client_close(c); return; }
        c->flags |= C_INPUT_DONE; /* half-closed: it still reads output until the exit */
        if (!(c->flags & C_STDIN)) return;
        c->flags &= ~C_STDIN;
        if (c->flags & C_KEEP) return; /* docker's StdinOnce=false */
        if (stdin_w >= 0) { if (stdin_pending.len == 0) close_stdin(); else stdin_eof_requested = 1; }
        return;
    }
    unsigned char *p = buf;
    if (!(c->flags & C_REQUEST)) {
        unsigned char *nl = memchr(p, '\n', (size_t)n);
        size_t take = nl ? (size_t)(nl - p) : (size_t)n;
        if (c->len + take >= MAX_LINE) { c->len = 0; return reply(c, T_ERROR, "request too long"); }
        memcpy(c->line + c->len, p, take);
        c->len += (int)take;
        c->line[c->len] = 0;
        if (!nl) return;
        handle(c);
        if (c->fd < 0) return;
        n -= (ssize_t)take + 1;
        p = nl + 1;
    }
    if ((c->flags & C_ATTACHED) && (c->flags & C_STDIN) && n > 0 && exit_code < 0) append(&stdin_pending, p, (size_t)n);
}

/* ------------------------------------------------------------------ output, children */

static void read_output(int *fd, int stream)
{
    ssize_t n = read(*fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) { /* EOF, or EIO: the pty's last user is gone */
        closefd(fd);
        if (out[1] < 0 && out[2] < 0 && pty < 0) { log_flush(1); log_flush(2); }
        return;
    }
    log_write(stream, buf, (size_t)n);
    if (holding) {
        unsigned char h[5] = { (unsigned char)stream, (unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n };
        append(&held, h, 5);
        append(&held, buf, (size_t)n);
        if (held.len > MAX_HELD) stop_holding();
    }
    for (int i = 0; i < nclients; i++) {
        struct client *c = clients[i];
        if (c->fd >= 0 && (c->flags & C_ATTACHED) && (c->flags & (stream == T_STDOUT ? C_STDOUT : C_STDERR))) send_frame(c, stream, buf, (size_t)n);
    }
}

static void reap(void)
{
    struct signalfd_siginfo si;
    int st;
    pid_t r;
    while (read(sigfd, &si, sizeof si) == sizeof si) {}
    while ((r = waitpid(-1, &st, WNOHANG | __WALL)) > 0) {
        if (r == init_pid && exit_code < 0) {
            exit_code = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
            drain_deadline = now_ms() + DRAIN_MS;
            stop_deadline = INT64_MAX;
        } else if (r == health_pid) health_pid = 0;
    }
}

/* argv for berth-shim: its own arguments (after --) and ours. */
static char **shim_args(const char *const *extra, int nextra)
{
    char **v = xrealloc(NULL, sizeof *v * (size_t)(shim_argc + nextra + 1));
    memcpy(v, shim_argv, sizeof *v * (size_t)shim_argc);
    for (int i = 0; i < nextra; i++) v[shim_argc + i] = (char *)extra[i];
    v[shim_argc + nextra] = NULL;
    return v;
}

static void exec_shim(char **argv)
{
    syscall(SYS_execveat, exec_fd, "", argv, environ, AT_EMPTY_PATH);
}

static void start_health(void)
{
    static const char *const extra[] = { "--health" };
    char **argv = shim_args(extra, 1);
    health_due = now_ms() + health_interval;
    pid_t p = fork();
    if (p == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        exec_shim(argv);
        _exit(127);
    }
    if (p > 0) health_pid = p;
    else say("fork", errno);
    free(argv);
}

/* "FD.FLAGS[.HEXLINE]" per client, comma-separated: what the next monitor (or C#) needs to go on. */
static char *clients_spec(void)
{
    struct bytes s = { 0 };
    char item[64];
    for (int i = 0; i < nclients; i++) {
        struct client *c = clients[i];
        if (c->fd < 0) continue;
        int n = snprintf(item, sizeof item, "%s%d.%u", s.len ? "," : "", c->fd, c->flags);
        append(&s, item, (size_t)n);
        if (!(c->flags & C_REQUEST) && c->len > 0) {
            append(&s, ".", 1);
            for (int k = 0; k < c->len; k++) { n = snprintf(item, sizeof item, "%02x", (unsigned char)c->line[k]); append(&s, item, (size_t)n); }
        }
    }
    append(&s, "", 1);
    return s.p;
}

static void parse_clients(const char *spec)
{
    while (spec && *spec) {
        char *end;
        int fd = (int)strtol(spec, &end, 10);
        unsigned flags = *end == '.' ? (unsigned)strtoul(end + 1, &end, 10) : 0;
        struct client *c = client_add(fd, flags);
        cloexec(fd, 1);
        if (*end == '.')
            for (end++; end[0] && end[1] && end[0] != ',' && c->len < MAX_LINE - 1; end += 2) {
                char h[3] = { end[0], end[1], 0 };
                c->line[c->len++] = (char)strtoul(h, NULL, 16);
            }
        c->line[c->len] = 0;
        spec = *end == ',' ? end + 1 : end;
    }
}

/* ------------------------------------------------------------------ main */

static int argfd(const char *s) { int fd = atoi(s); cloexec(fd, 1); return fd; }

int main(int argc, char **argv)
{
    const char *client_spec = NULL, *report = NULL;
    long long wait_ms = -1;
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--") == 0) { i++; break; }
        if (!v) { say(a, EINVAL); return 125; }
        i++;
        if (strcmp(a, "--exec-fd") == 0) exec_fd = argfd(v);
        else if (strcmp(a, "--listener") == 0) listener = argfd(v);
        else if (strcmp(a, "--pid") == 0) init_pid = atoi(v);
        else if (strcmp(a, "--wait") == 0) wait_ms = atoll(v);
        else if (strcmp(a, "--exit") == 0) exit_code = atoi(v);
        else if (strcmp(a, "--stdout") == 0) out[1] = argfd(v);
        else if (strcmp(a, "--stderr") == 0) out[2] = argfd(v);
        else if (strcmp(a, "--pty") == 0) pty = argfd(v);
        else if (strcmp(a, "--stdin") == 0) stdin_w = argfd(v);
        else if (strcmp(a, "--starter") == 0) starter = argfd(v);
        else if (strcmp(a, "--report") == 0) report = v;
        else if (strcmp(a, "--hold") == 0) holding = strcmp(v, "1") == 0;
        else if (strcmp(a, "--log") == 0) log_path = v;
        else if (strcmp(a, "--log-max-size") == 0) log_max_size = atoll(v);
        else if (strcmp(a, "--log-max-file") == 0) log_max_file = atoi(v) > 1 ? atoi(v) : 1;
        else if (strcmp(a, "--health-interval") == 0) health_interval = atoll(v);
        else if (strcmp(a, "--clients") == 0) client_spec = v;
        else { say(a, EINVAL); return 125; }
    }
    shim_argv = argv + i;
    shim_argc = argc - i;
    if (exec_fd < 0 || listener < 0 || shim_argc < 1 || (init_pid <= 0) == (wait_ms < 0)) { say("usage: berth-shim --exec-fd FD --listener FD (--pid PID | --wait MS --exit CODE) ... -- ARGV", EINVAL); return 125; }
    parse_clients(client_spec);

    /* SIGCHLD through a signalfd (blocked first, then one sweep for exits before it); the rest default. */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    for (int s = 1; s < 32; s++) if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    sigprocmask(SIG_SETMASK, &chld, NULL);
    sigfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sigfd < 0) { say("signalfd", errno); return 1; }
    if (log_path) log_open(0);
    long long start = now_ms();
    if (wait_ms >= 0) wait_deadline = start + wait_ms;
    else if (health_interval > 0) health_due = start + health_interval;
    reap();
    /* The starter's answer ("ok PID") once this program runs: `run -d` returns to a monitor in its
     * steady state. With --hold 1 the pipe stays open until the attach (or the starter goes away). */
    if (starter >= 0 && report) {
        char line[256];
        int n = snprintf(line, sizeof line, "%s\n", report);
        if (n > 0 && write(starter, line, (size_t)n) < 0) say("starter", errno);
    }
    if (!holding) closefd(&starter);

    struct pollfd *pfd = NULL;
    struct client **pc = NULL;
    for (;;) {
        long long now = now_ms();
        int output_open = out[1] >= 0 || out[2] >= 0 || pty >= 0;
        if (wait_ms >= 0) { if (now >= wait_deadline || stop_requested) break; }
        else if (exit_code >= 0 && (!output_open || now > drain_deadline) && !holding && health_pid == 0) break;

        int n = 0, cap = 8 + nclients;
        pfd = xrealloc(pfd, sizeof *pfd * (size_t)cap);
        pc = xrealloc(pc, sizeof *pc * (size_t)cap);
#define ADD(f, ev, c) (pfd[n] = (struct pollfd){ .fd = (f), .events = (short)(ev) }, pc[n++] = (c))
        ADD(sigfd, POLLIN, NULL);
        ADD(listener, POLLIN, NULL);
        if (holding && starter >= 0) ADD(starter, 0, NULL);
        if (out[1] >= 0) ADD(out[1], POLLIN, NULL);
        if (out[2] >= 0) ADD(out[2], POLLIN, NULL);
        if (pty >= 0) ADD(pty, POLLIN | (stdin_pending.len > 0 && exit_code < 0 ? POLLOUT : 0), NULL);
        if (stdin_w >= 0 && stdin_pending.len > 0) ADD(stdin_w, POLLOUT, NULL);
        for (i = 0; i < nclients; i++)
            if (clients[i]->fd >= 0 && !(clients[i]->flags & C_INPUT_DONE)) ADD(clients[i]->fd, POLLIN, clients[i]);

        long long deadline = INT64_MAX;
        if (wait_ms >= 0) deadline = wait_deadline;
        if (exit_code >= 0 && drain_deadline > now && (output_open || health_pid)) deadline = drain_deadline;
        if (stop_deadline < deadline) deadline = stop_deadline;
        if (running() && health_interval > 0 && health_pid == 0 && health_due < deadline) deadline = health_due;
        int timeout = deadline == INT64_MAX ? -1 : deadline <= now ? 0 : deadline - now > 0x7fffffff ? 0x7fffffff : (int)(deadline - now);
        int r = poll(pfd, (nfds_t)n, timeout);
        if (r < 0 && errno != EINTR) { say("poll", errno); return 1; }
        now = now_ms();
        if (running() && now >= stop_deadline) { kill(init_pid, SIGKILL); stop_deadline = INT64_MAX; }
        for (int k = 0; r > 0 && k < n; k++) {
            short ev = pfd[k].revents;
            int fd = pfd[k].fd;
            if (!ev) continue;
            if (pc[k]) { if (pc[k]->fd == fd) read_client(pc[k]); continue; }
            if (fd == sigfd) reap();
            else if (fd == listener) {
                int c = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
                if (c >= 0) client_add(c, 0);
            } else if (fd == starter) stop_holding(); /* the starter went away: nobody will attach */
            else if (fd == out[1]) read_output(&out[1], T_STDOUT);
            else if (fd == out[2]) read_output(&out[2], T_STDERR);
            else if (fd == pty) {
                if (ev & POLLOUT) flush_stdin(pty);
                if (pty >= 0 && (ev & (POLLIN | POLLHUP | POLLERR))) read_output(&pty, T_STDOUT);
            } else if (fd == stdin_w) flush_stdin(stdin_w);
        }
        /* drop closed clients */
        int k = 0;
        for (i = 0; i < nclients; i++) { if (clients[i]->fd >= 0) clients[k++] = clients[i]; else free(clients[i]); }
        nclients = k;
        if (running() && health_interval > 0 && health_pid == 0 && now >= health_due) start_health();
        if (exit_code >= 0 && now > drain_deadline) {
            /* drained long enough (a daemon may hold the pipes); a health check still running is cut short */
            closefd(&out[1]); closefd(&out[2]); closefd(&pty);
            if (health_pid > 0 && !health_killed) { kill(health_pid, SIGKILL); health_killed = 1; }
        }
    }

    /* Hand over to berth-shim --resume: what happened, the listener and the clients. */
    log_flush(1);
    log_flush(2);
    char code[16], lfd[16];
    snprintf(code, sizeof code, "%d", exit_code >= 0 ? exit_code : 255);
    snprintf(lfd, sizeof lfd, "%d", listener);
    char *spec = clients_spec();
    const char *extra[12];
    int ne = 0;
    extra[ne++] = "--resume"; extra[ne++] = wait_ms >= 0 ? "start" : "exited";
    extra[ne++] = "--exit"; extra[ne++] = code;
    extra[ne++] = "--listener"; extra[ne++] = lfd;
    if (*spec) { extra[ne++] = "--clients"; extra[ne++] = spec; }
    if (stop_requested) extra[ne++] = "--stop-requested";
    cloexec(listener, 0);
    for (i = 0; i < nclients; i++) cloexec(clients[i]->fd, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    exec_shim(shim_args(extra, ne));
    say("exec berth-shim --resume", errno);
    return 1;
}
