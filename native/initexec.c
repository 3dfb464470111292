/* initexec: the container's init without the .NET runtime (see docs/ARCHITECTURE.md, "Native code").
 *
 * `berth-runc init` is exec'd with _BERTH_INIT=<sync fd>. Called from nsexec's constructor (after
 * the namespaces, if any, are made), before .NET starts, this code receives one plan message on the
 * sync socket, a list of operations the runtime (C#: src/Berth.Runtime/Init/InitCompiler.cs)
 * compiled from config.json, carries them out in order and execve()s the container's process.
 * It is decision-free: every choice (which mounts, which flags, which error text names which
 * object) was made by the compiler; an op only says how one system call (or a fixed few) is made
 * and what its failure is called. The wire format, little-endian:
 *
 *     plan   := "BIP1" u32:count op*
 *     op     := u32:code u32:flags u64:n0 u64:n1 u64:n2 u64:n3 u32:nstr str*
 *     str    := u32:len bytes[len] '\0'            (len 0xffffffff: a null string, no bytes)
 *
 * Any failure sends "error:<message>" on the sync socket (or, once that is closed, writes
 * "berth-runc init: <message>" to stderr) and exits 1. Without _BERTH_INIT it returns at once.
 * Keep in step with InitOp in InitCompiler.cs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <spawn.h>
#include <time.h>
#include <unistd.h>

#define INIT_ENV "_BERTH_INIT"

enum {
    OP_WRITE = 1,         /* s0 path, s1 data */
    OP_OPEN_FIFO,         /* s0 path: kept O_PATH for FIFO_WAIT */
    OP_OPEN_LATE,         /* s0 path: a cgroup file opened now, "0" written at JOIN_LATE */
    OP_MOUNT,             /* s0 source, s1 target (host path), s2 type, s3 data, s4 label; n0 flags */
    OP_OPEN_ROOT,         /* s0 rootfs */
    OP_MOUNT_IN_ROOT,     /* s0 source, s1 dest (in root), s2 type, s3 data, s4 label, s5 bind source; n0 flags, n1 create kind, n2 alt ops on EPERM */
    OP_MKPATH,            /* s0 path in root; n1 create kind */
    OP_SYMLINK,           /* s0 target, s1 link in root */
    OP_MKNOD,             /* s0 path in root; n0 type char, n1 major, n2 minor, n3 mode | uid << 32; flags: gid */
    OP_BINDDEV,           /* s0 path (host and in root) */
    OP_PTMX,              /* /dev/ptmx -> pts/ptmx when /dev/pts/ptmx exists */
    OP_KEYRING,           /* s0 name */
    OP_HOOKS_SYNC,        /* send "hooks", wait "hooks-done" */
    OP_HOOK,              /* s0 stage, s1 path, s2 state json, n0 argc, n1 timeout secs; s3.. args then env */
    OP_PTY_OPEN,          /* s0 ptmx, s1 pts prefix ("/" or rootfs), n0 rows, n1 cols; flag: bind /dev/console */
    OP_PIVOT,             /* s0 rootfs */
    OP_NOPIVOT,           /* s0 rootfs */
    OP_CHROOT,            /* s0 rootfs; flag: chdir("/") after */
    OP_MASK,              /* s0 path */
    OP_READONLY,          /* s0 path */
    OP_SETHOSTNAME,       /* s0 name */
    OP_SETDOMAINNAME,     /* s0 name */
    OP_LOOPBACK,
    OP_PTY_CTTY,          /* TIOCSCTTY (after SETSID), stdio, send "pty" + master */
    OP_RLIMIT,            /* n0 resource, n1 soft, n2 hard, s0 label */
    OP_CHDIR,             /* s0 cwd */
    OP_LOOKPATH,          /* s0 name; flag: name has a '/'; s1.. candidates */
    OP_RECV_LISTENER,     /* receive "seccomp-listener" + fd */
    OP_SECCOMP,           /* s0 program, s1 listener state (or null); n0 flags, n1 instructions */
    OP_READY,             /* send "ready"; flag: then wait for "start"; closes the sync socket */
    OP_FIFO_WAIT,
    OP_CAPBSET_DROP,      /* n0 cap, s0 name */
    OP_PRCTL,             /* n0 option, n1 arg, s0 label */
    OP_SETIDS,            /* n0 uid, n1 gid, n2 1 = setgroups; s0.. gids as text */
    OP_CAPSET,            /* n0 effective, n1 permitted, n2 inheritable */
    OP_AMBIENT_RAISE,     /* n0 cap, s0 name */
    OP_UMASK,             /* n0 mask */
    OP_JOIN_LATE,
    OP_CLOSE_RANGE,       /* n0 first fd */
    OP_SETNS_MNT,         /* s0 path */
    OP_EXEC,              /* n0 argc; s0.. argv then env */
    OP_WAIT,              /* s0 message: wait for it on the sync socket (EOF: exit) */
    OP_SETSID,            /* a new session: the process leads it (and its pty may become its controlling tty) */
};

#define F_BIND_CONSOLE 1
#define F_WAIT_START 1
#define F_HAS_SLASH 1
#define F_CHDIR_ROOT 1
#define F_LOCKED 1        /* MOUNT_IN_ROOT: add the target's locked flags (nosuid/nodev/noexec) */
#define F_IGNORE_EEXIST 1 /* SYMLINK */
#define F_IGNORE_ALL 2    /* SYMLINK: skip when the link exists, ignore errors */

enum { CREATE_DIR = 0, CREATE_FILE = 1, CREATE_LIKE_SOURCE = 2 };

struct op {
    uint32_t code, flags;
    uint64_t n[4];
    uint32_t nstr;
    char **s;
    uint32_t *len;
};

static int sync_fd = -1;
static int root_fd = -1;
static int fifo_fd = -1;
static int late_fd[16];
static const char *late_path[16];
static int late_count;
static int pty_master = -1, pty_slave = -1;
static int listener_sock = -1;
static const char *exe_path;

static void send_msg(int fd, const char *msg, size_t len, int pass_fd)
{
    struct iovec iov = { (void *)msg, len };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (pass_fd >= 0) {
        memset(&u, 0, sizeof u);
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof u.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    ssize_t r;
    do r = sendmsg(fd, &mh, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    char buf[4096];
    int off = 0;
    if (sync_fd >= 0) off = snprintf(buf, sizeof buf, "error:");
    else off = snprintf(buf, sizeof buf, "berth-runc init: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + off, sizeof buf - off, fmt, ap);
    va_end(ap);
    if (sync_fd >= 0) send_msg(sync_fd, buf, strlen(buf), -1);
    else {
        size_t n = strlen(buf);
        if (n < sizeof buf - 1) buf[n++] = '\n';
        ssize_t w = write(2, buf, n);
        (void)w;
    }
    _exit(1);
}

/* "<what>: <strerror>" with errno taken now. */
__attribute__((format(printf, 1, 2), noreturn)) static void DIE_ERRNO(const char *fmt, ...)
{
    int e = errno;
    char what[3000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    die("%s: %s", what, strerror(e));
}

/* Receives one message (NUL-terminated); returns its length, -1 when the peer closed. */
static ssize_t recv_msg(char *buf, size_t size, int *passed)
{
    struct iovec iov = { buf, size - 1 };
    union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b };
    ssize_t n;
    do n = recvmsg(sync_fd, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0) DIE_ERRNO("recvmsg sync socket");
    if (passed) {
        *passed = -1;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(passed, CMSG_DATA(c), sizeof(int));
    }
    if (n == 0) return -1;
    buf[n] = '\0';
    return n;
}

/* ---------------------------------------------------------------- paths inside the rootfs */

static long openat2_in_root(const char *rel, uint64_t flags)
{
    struct open_how how = { .flags = flags | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
    long fd = syscall(SYS_openat2, root_fd, *rel ? rel : ".", &how, sizeof how);
    return fd < 0 ? -errno : fd;
}

/* Lexical clean as the rootfs sees it: ".." never climbs above "/"; result without leading '/'. */
static void clean_in_root(const char *in, char *out, size_t size)
{
    char tmp[8400];
    snprintf(tmp, sizeof tmp, "%s", in);
    size_t o = 0;
    out[0] = '\0';
    size_t starts[512];
    int depth = 0;
    for (char *save = NULL, *c = strtok_r(tmp, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0) continue;
        if (strcmp(c, "..") == 0) { if (depth > 0) o = starts[--depth]; out[o] = '\0'; continue; }
        if (depth < 512) starts[depth++] = o;
        o += snprintf(out + o, size - o, "%s%s", o ? "/" : "", c);
        if (o >= size) o = size - 1;
    }
}

/* The path's components ("" and "." dropped, ".." kept: openat2 resolves it in-root) joined by '/'. */
static void relative(const char *path, char *out, size_t size)
{
    size_t o = 0;
    out[0] = '\0';
    for (const char *c = path; *c; ) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        if (n > 0 && !(n == 1 && c[0] == '.') && o + n + 2 < size) {
            if (o) out[o++] = '/';
            memcpy(out + o, c, n);
            o += n;
            out[o] = '\0';
        }
        c = e ? e + 1 : c + n;
    }
}

/* Opens path (relative to the root) O_PATH, creating missing directories (0755) and, with
 * file set, an empty final file; each component is created under a parent that was itself
 * resolved inside the root. A dangling symlink on the way is followed inside the root. */
static int open_or_create(const char *path, int file, int depth)
{
    if (depth > 40) { errno = ELOOP; DIE_ERRNO("openat2 %s", path); }
    char rel[4096];
    relative(path, rel, sizeof rel);
    long fd = openat2_in_root(rel, O_PATH);
    if (fd >= 0) return (int)fd;
    if (fd != -ENOENT) { errno = (int)-fd; DIE_ERRNO("openat2 %s", path); }
    /* Usually only the last component is missing (dev/pts, sys/fs/cgroup/cpu): start the walk at
     * its parent, opened in-root as the walk would have reached it. */
    char prefix[4096];
    size_t plen = 0;
    const char *c = rel;
    long parent = -1;
    const char *last = strrchr(rel, '/');
    int known_missing = 0;
    if (last && strstr(rel, "..") == NULL) {
        plen = (size_t)(last - rel);
        memcpy(prefix, rel, plen);
        prefix[plen] = '\0';
        parent = openat2_in_root(prefix, O_PATH);
        if (parent >= 0) { c = last + 1; known_missing = 1; }
        else plen = 0;
    }
    if (parent < 0) parent = openat2_in_root("", O_PATH);
    if (parent < 0) { errno = (int)-parent; DIE_ERRNO("openat2 ."); }
    while (*c) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        char name[256];
        if (n >= sizeof name) { errno = ENAMETOOLONG; DIE_ERRNO("openat2 %s", path); }
        memcpy(name, c, n);
        name[n] = '\0';
        if (strcmp(name, "..") == 0) die("path \"%s\" contains \"..\"", path);
        plen += snprintf(prefix + plen, sizeof prefix - plen, "%s%s", plen ? "/" : "", name);
        long next = known_missing ? -ENOENT : openat2_in_root(prefix, O_PATH);
        known_missing = 0;
        if (next == -ENOENT) {
            char target[4096];
            ssize_t tl = readlinkat((int)parent, name, target, sizeof target - 1);
            if (tl >= 0) {
                /* Follow it inside the root (as runc does) and create what it names there. */
                target[tl] = '\0';
                char followed[8400];
                size_t dirlen = plen > n ? plen - n - 1 : 0;
                if (target[0] == '/') snprintf(followed, sizeof followed, "%s/%s", target, e ? e + 1 : "");
                else snprintf(followed, sizeof followed, "/%.*s/%s/%s", (int)dirlen, prefix, target, e ? e + 1 : "");
                char cleaned[4096];
                clean_in_root(followed, cleaned, sizeof cleaned);
                close((int)parent);
                return open_or_create(cleaned, file, depth + 1);
            }
            if (!e && file) {
                int f = openat((int)parent, name, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (f < 0) DIE_ERRNO("create %s", path);
                close(f);
            } else if (mkdirat((int)parent, name, 0755) != 0 && errno != EEXIST) DIE_ERRNO("mkdir %s", path);
            next = openat2_in_root(prefix, O_PATH);
        }
        if (next < 0) { errno = (int)-next; DIE_ERRNO("openat2 %s", prefix); }
        close((int)parent);
        parent = next;
        c = e ? e + 1 : c + n;
    }
    return (int)parent;
}

static int try_open_in_root(const char *path)
{
    char rel[4096];
    relative(path, rel, sizeof rel);
    long fd = openat2_in_root(rel, O_PATH);
    if (fd == -ENOENT) return -1;
    if (fd < 0) { errno = (int)-fd; DIE_ERRNO("openat2 %s", path); }
    return (int)fd;
}

static void split_path(const char *path, char *dir, size_t dsize, const char **name)
{
    const char *slash = strrchr(path, '/');
    if (!slash) { snprintf(dir, dsize, "/"); *name = path; return; }
    snprintf(dir, dsize, "%.*s", (int)(slash - path), path);
    if (!dir[0]) snprintf(dir, dsize, "/");
    *name = slash + 1;
}

static void fd_path(int fd, char *buf, size_t size) { snprintf(buf, size, "/proc/self/fd/%d", fd); }

static unsigned long locked_flags(const char *path)
{
    struct statvfs st;
    if (statvfs(path, &st) != 0) return 0;
    unsigned long f = 0;
    if (st.f_flag & ST_NOSUID) f |= MS_NOSUID;
    if (st.f_flag & ST_NODEV) f |= MS_NODEV;
    if (st.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
    return f;
}

/* ---------------------------------------------------------------- ops */

static void op_write(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) DIE_ERRNO("open %s", path);
    size_t len = strlen(data), off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0) { if (errno == EINTR) continue; DIE_ERRNO("write \"%s\" to %s", data, path); }
        off += (size_t)n;
    }
    close(fd);
}

/* Returns 0, or the errno when alt_on_eperm and the mount failed with EPERM. */
static int op_mount_in_root(struct op *o)
{
    const char *source = o->s[0], *dest = o->s[1], *type = o->s[2], *data = o->s[3], *label = o->s[4];
    int file = o->n[1] == CREATE_FILE;
    if (o->n[1] == CREATE_LIKE_SOURCE) {
        /* s5: the bind source the target's kind follows (a remount's own source is null). */
        const char *like = o->nstr > 5 && o->s[5] ? o->s[5] : source;
        struct stat st;
        if (like == NULL || stat(like, &st) != 0) die("mount %s: source %s does not exist", dest, like ? like : "(none)");
        file = !S_ISDIR(st.st_mode);
    }
    int t = open_or_create(dest, file, 0);
    char tp[64];
    fd_path(t, tp, sizeof tp);
    unsigned long flags = o->n[0];
    if (o->flags & F_LOCKED) flags |= locked_flags(tp);
    if (mount(source, tp, type, flags, data) != 0) {
        int e = errno;
        if (o->n[2] > 0 && e == EPERM) { close(t); return e; }
        if (e == ENODEV && type) die("%s: %s (unknown filesystem type \"%s\")", label, strerror(e), type);
        die("%s: %s", label, strerror(e));
    }
    close(t);
    return 0;
}

static void op_mknod(struct op *o)
{
    const char *path = o->s[0];
    char dir[4096];
    const char *name;
    split_path(path, dir, sizeof dir, &name);
    int parent = open_or_create(dir, 0, 0);
    unlinkat(parent, name, 0); /* replace whatever the image put there */
    char type = (char)o->n[0];
    mode_t kind = type == 'b' ? S_IFBLK : type == 'p' ? S_IFIFO : S_IFCHR;
    dev_t dev = type == 'p' ? 0 : makedev((unsigned)o->n[1], (unsigned)o->n[2]);
    mode_t mode = (mode_t)(o->n[3] & 0xfff);
    uid_t uid = (uid_t)(o->n[3] >> 32);
    gid_t gid = (gid_t)o->flags;
    mode_t old = umask(0);
    int rc = mknodat(parent, name, kind | mode, dev);
    int e = errno;
    umask(old);
    if (rc != 0) { errno = e; DIE_ERRNO("mknod %s", path); }
    if (fchownat(parent, name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) DIE_ERRNO("chown %s", path);
    close(parent);
}

static void op_binddev(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 && lstat(path, &st) != 0) die("device %s: no such device on the host to bind in a user namespace", path);
    char dir[4096];
    const char *name;
    split_path(path, dir, sizeof dir, &name);
    int parent = open_or_create(dir, 0, 0);
    unlinkat(parent, name, 0);
    close(parent);
    int t = open_or_create(path, 1, 0);
    char tp[64];
    fd_path(t, tp, sizeof tp);
    if (mount(path, tp, NULL, MS_BIND, NULL) != 0) DIE_ERRNO("mount device %s (bind)", path);
    close(t);
}

static void op_symlink(const char *target, const char *link, uint32_t flags)
{
    if (flags & F_IGNORE_ALL) {
        int existing = try_open_in_root(link);
        if (existing >= 0) { close(existing); return; }
    }
    char dir[4096];
    const char *name;
    split_path(link, dir, sizeof dir, &name);
    int parent = open_or_create(dir, 0, 0);
    if (symlinkat(target, parent, name) != 0 && !(flags & F_IGNORE_ALL) && errno != EEXIST) DIE_ERRNO("symlink %s", link);
    close(parent);
}

static void op_ptmx(void)
{
    int ptmx = try_open_in_root("/dev/pts/ptmx");
    if (ptmx < 0) return;
    close(ptmx);
    int old = try_open_in_root("/dev/ptmx");
    if (old >= 0) {
        close(old);
        int dev = open_or_create("/dev", 0, 0);
        unlinkat(dev, "ptmx", 0);
        close(dev);
    }
    op_symlink("pts/ptmx", "/dev/ptmx", F_IGNORE_EEXIST);
}

static void op_hook(struct op *o)
{
    const char *stage = o->s[0], *path = o->s[1], *state = o->s[2];
    size_t argc = (size_t)o->n[0];
    char **args = o->s + 3;
    char **env = malloc(sizeof(char *) * (o->nstr - 3 - argc + 1));
    for (size_t i = 0; i < o->nstr - 3 - argc; i++) env[i] = o->s[3 + argc + i];
    env[o->nstr - 3 - argc] = NULL;
    char **argv = malloc(sizeof(char *) * (argc + 1));
    for (size_t i = 0; i < argc; i++) argv[i] = args[i];
    argv[argc] = NULL;

    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) DIE_ERRNO("pipe2");
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&fa, p[0], 0);
    sigset_t empty, all;
    sigemptyset(&empty);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawn(&pid, path, &fa, &attr, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(p[0]);
    if (rc != 0) { close(p[1]); die("%s hook %s: posix_spawn %s: %s", stage, path, path, strerror(rc)); }
    size_t len = strlen(state), off = 0;
    signal(SIGPIPE, SIG_IGN);
    while (off < len) {
        ssize_t n = write(p[1], state + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* the hook need not read its stdin */
        off += (size_t)n;
    }
    close(p[1]);
    signal(SIGPIPE, SIG_DFL);
    uint64_t timeout = o->n[1];
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int status = 0;
    long sleep_ms = 1;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) DIE_ERRNO("%s hook %s: waitpid", stage, path);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (timeout > 0 && (uint64_t)(now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 > timeout * 1000) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            die("%s hook %s: timed out after %llus", stage, path, (unsigned long long)timeout);
        }
        struct timespec ts = { 0, sleep_ms * 1000000 };
        nanosleep(&ts, NULL);
        sleep_ms = sleep_ms * 2 > 20 ? 20 : sleep_ms * 2;
    }
    int code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
    if (code != 0) die("%s hook %s: exit status %d", stage, path, code);
    free(env);
    free(argv);
}

static void op_pty_open(struct op *o)
{
    const char *ptmx = o->s[0], *prefix = o->s[1];
    pty_master = open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (pty_master < 0) DIE_ERRNO("open %s", ptmx);
    int unlock = 0, n;
    if (ioctl(pty_master, TIOCSPTLCK, &unlock) != 0) DIE_ERRNO("ioctl(TIOCSPTLCK) %s", ptmx);
    if (ioctl(pty_master, TIOCGPTN, &n) != 0) DIE_ERRNO("ioctl(TIOCGPTN) %s", ptmx);
    char slave[4200];
    size_t pl = strlen(prefix);
    snprintf(slave, sizeof slave, "%s%sdev/pts/%d", prefix, pl && prefix[pl - 1] == '/' ? "" : "/", n);
    pty_slave = open(slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (pty_slave < 0) DIE_ERRNO("open %s", slave);
    if (o->n[0] > 0 || o->n[1] > 0) {
        struct winsize ws = { .ws_row = (unsigned short)o->n[0], .ws_col = (unsigned short)o->n[1] };
        if (ioctl(pty_master, TIOCSWINSZ, &ws) != 0) DIE_ERRNO("ioctl(TIOCSWINSZ)");
    }
    if (o->flags & F_BIND_CONSOLE) {
        int console = open_or_create("/dev/console", 1, 0);
        char tp[64];
        fd_path(console, tp, sizeof tp);
        if (mount(slave, tp, NULL, MS_BIND, NULL) != 0) DIE_ERRNO("mount /dev/console");
        close(console);
    }
}

static void op_pty_ctty(void)
{
    if (ioctl(pty_slave, TIOCSCTTY, NULL) != 0) DIE_ERRNO("ioctl(TIOCSCTTY)");
    for (int i = 0; i < 3; i++)
        if (dup3(pty_slave, i, 0) < 0) DIE_ERRNO("dup3 pty");
    send_msg(sync_fd, "pty", 3, pty_master);
    close(pty_master);
    close(pty_slave);
    pty_master = pty_slave = -1;
}

static void op_pivot(const char *rootfs)
{
    int old_root = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (old_root < 0) DIE_ERRNO("open /");
    int new_root = open(rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (new_root < 0) DIE_ERRNO("open %s", rootfs);
    if (fchdir(new_root) != 0) DIE_ERRNO("fchdir %s", rootfs);
    /* pivot_root(".", "."): the old root ends up stacked under the new one; detach it. */
    if (syscall(SYS_pivot_root, ".", ".") != 0) DIE_ERRNO("pivot_root %s", rootfs);
    if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) != 0) DIE_ERRNO("mount old root (make slave)");
    if (umount2(".", MNT_DETACH) != 0) DIE_ERRNO("umount old root");
    if (chdir("/") != 0) DIE_ERRNO("chdir /");
    close(old_root);
    close(new_root);
}

static int is_dir(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISDIR(st.st_mode); }

static void op_mask(const char *p)
{
    struct stat st;
    int found = stat(p, &st) == 0;
    if (found && S_ISDIR(st.st_mode)) {
        if (mount("tmpfs", p, "tmpfs", MS_RDONLY, NULL) != 0) DIE_ERRNO("mount masked path %s", p);
    } else if (found || lstat(p, &st) == 0) {
        if (mount("/dev/null", p, NULL, MS_BIND, NULL) != 0 && errno != ENOENT) DIE_ERRNO("mount masked path %s", p);
    }
}

static void op_readonly(const char *p)
{
    struct stat st;
    if (stat(p, &st) != 0) return; /* not there (a dangling symlink neither): nothing to protect */
    if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) != 0) DIE_ERRNO("mount readonly path %s", p);
    unsigned long locked = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | locked, NULL) != 0 &&
        mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL) != 0)
        DIE_ERRNO("mount readonly path %s", p);
}

static void op_loopback(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) DIE_ERRNO("loopback up in the container's network namespace: socket");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) DIE_ERRNO("loopback up in the container's network namespace: ioctl(SIOCGIFFLAGS) lo");
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) DIE_ERRNO("loopback up in the container's network namespace: ioctl(SIOCSIFFLAGS) lo");
    close(s);
}

static void op_chdir(const char *cwd)
{
    if (chdir(cwd) != 0) DIE_ERRNO("cannot change to working directory %s", cwd);
    /* A cwd reached through a descriptor that names a host directory (CVE-2024-21626) is outside
     * the container's root: the kernel reports it as "(unreachable)", glibc's getcwd as ENOENT. */
    char here[4096];
    if (getcwd(here, sizeof here) == NULL || here[0] != '/') die("working directory %s is outside the container's root", cwd);
}

static void op_lookpath(struct op *o)
{
    const char *name = o->s[0];
    if (o->flags & F_HAS_SLASH) {
        if (is_dir(name)) die("exec: \"%s\": is a directory", name);
        if (access(name, X_OK) != 0) die("exec: \"%s\": %s", name, strerror(errno));
        exe_path = name;
        return;
    }
    for (uint32_t i = 1; i < o->nstr; i++)
        if (access(o->s[i], X_OK) == 0 && !is_dir(o->s[i])) { exe_path = o->s[i]; return; }
    die("exec: \"%s\": executable file not found in $PATH", name);
}

static void op_seccomp(struct op *o)
{
    struct sock_fprog prog = { .len = (unsigned short)o->n[1], .filter = (struct sock_filter *)o->s[0] };
    unsigned int flags = (unsigned int)o->n[0];
    long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    if (rc < 0) DIE_ERRNO("seccomp(SECCOMP_SET_MODE_FILTER) %u instructions, flags 0x%x", prog.len, flags);
    if ((flags & SECCOMP_FILTER_FLAG_TSYNC) && !(flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) && rc > 0) {
        errno = ESRCH;
        DIE_ERRNO("seccomp(SECCOMP_SET_MODE_FILTER) TSYNC: thread %ld could not be synchronized", rc);
    }
    if ((flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) && listener_sock >= 0 && o->s[1]) {
        /* The runtime connected this socket to linux.seccomp.listenerPath; the fd goes with the state. */
        send_msg(listener_sock, o->s[1], strlen(o->s[1]), (int)rc);
        close(listener_sock);
        close((int)rc);
        listener_sock = -1;
    }
}

static void op_setids(struct op *o)
{
    gid_t gids[256];
    uint32_t n = o->nstr > 256 ? 256 : o->nstr;
    for (uint32_t i = 0; i < n; i++) gids[i] = (gid_t)strtoul(o->s[i], NULL, 10);
    if (o->n[2] && syscall(SYS_setgroups, (long)n, gids) != 0) DIE_ERRNO("setgroups");
    if (syscall(SYS_setresgid, (long)o->n[1], (long)o->n[1], (long)o->n[1]) != 0) DIE_ERRNO("setresgid %llu", (unsigned long long)o->n[1]);
    if (syscall(SYS_setresuid, (long)o->n[0], (long)o->n[0], (long)o->n[0]) != 0) DIE_ERRNO("setresuid %llu", (unsigned long long)o->n[0]);
}

static void op_capset(struct op *o)
{
    uint32_t hdr[2] = { 0x20080522, 0 }; /* _LINUX_CAPABILITY_VERSION_3 */
    uint32_t data[6] = {
        (uint32_t)o->n[0], (uint32_t)o->n[1], (uint32_t)o->n[2],
        (uint32_t)(o->n[0] >> 32), (uint32_t)(o->n[1] >> 32), (uint32_t)(o->n[2] >> 32),
    };
    if (syscall(SYS_capset, hdr, data) != 0) DIE_ERRNO("capset");
}

static void op_exec(struct op *o)
{
    size_t argc = (size_t)o->n[0];
    char **argv = malloc(sizeof(char *) * (argc + 1));
    char **envp = malloc(sizeof(char *) * (o->nstr - argc + 1));
    for (size_t i = 0; i < argc; i++) argv[i] = o->s[i];
    argv[argc] = NULL;
    for (size_t i = argc; i < o->nstr; i++) envp[i - argc] = o->s[i];
    envp[o->nstr - argc] = NULL;
    execve(exe_path ? exe_path : argv[0], argv, envp);
    int e = errno;
    char buf[4200];
    int n = snprintf(buf, sizeof buf, "berth-runc: exec %s: %s\n", argv[0], strerror(e));
    ssize_t w = write(2, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    (void)w;
    _exit(e == ENOENT ? 127 : 126);
}

/* ---------------------------------------------------------------- plan */

static const unsigned char *cur, *end;

static uint32_t rd32(void)
{
    if (end - cur < 4) die("init plan truncated");
    uint32_t v;
    memcpy(&v, cur, 4);
    cur += 4;
    return v;
}

static uint64_t rd64(void)
{
    if (end - cur < 8) die("init plan truncated");
    uint64_t v;
    memcpy(&v, cur, 8);
    cur += 8;
    return v;
}

static void next_op(struct op *o)
{
    o->code = rd32();
    o->flags = rd32();
    for (int i = 0; i < 4; i++) o->n[i] = rd64();
    o->nstr = rd32();
    if (o->nstr > 1 << 16) die("init plan: op %u has too many strings", o->code);
    o->s = malloc(sizeof(char *) * (o->nstr + 5));
    o->len = malloc(sizeof(uint32_t) * (o->nstr + 5));
    for (uint32_t i = 0; i < o->nstr + 5; i++) { o->s[i] = NULL; o->len[i] = 0; }
    for (uint32_t i = 0; i < o->nstr; i++) {
        uint32_t len = rd32();
        if (len == 0xffffffffu) continue;
        if ((size_t)(end - cur) < (size_t)len + 1) die("init plan truncated");
        o->s[i] = (char *)cur;
        o->len[i] = len;
        cur += len + 1;
    }
}

static void free_op(struct op *o) { free(o->s); free(o->len); }

static void run(struct op *o)
{
    switch (o->code) {
    case OP_WRITE: op_write(o->s[0], o->s[1]); break;
    case OP_OPEN_FIFO:
        fifo_fd = open(o->s[0], O_PATH | O_CLOEXEC);
        if (fifo_fd < 0) DIE_ERRNO("open %s", o->s[0]);
        break;
    case OP_OPEN_LATE:
        if (late_count == 16) die("too many cgroup files");
        late_fd[late_count] = open(o->s[0], O_WRONLY | O_CLOEXEC);
        if (late_fd[late_count] < 0) DIE_ERRNO("open %s", o->s[0]);
        late_path[late_count++] = o->s[0];
        break;
    case OP_MOUNT:
        if (mount(o->s[0], o->s[1], o->s[2], o->n[0], o->s[3]) != 0) DIE_ERRNO("mount %s", o->s[4]);
        break;
    case OP_OPEN_ROOT:
        root_fd = open(o->s[0], O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0) DIE_ERRNO("open %s", o->s[0]);
        break;
    case OP_MKPATH: close(open_or_create(o->s[0], o->n[1] == CREATE_FILE, 0)); break;
    case OP_SYMLINK: op_symlink(o->s[0], o->s[1], o->flags); break;
    case OP_MKNOD: op_mknod(o); break;
    case OP_BINDDEV: op_binddev(o->s[0]); break;
    case OP_PTMX: op_ptmx(); break;
    case OP_KEYRING:
        /* keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): ENOSYS (no keyrings) is fine, as in runc. */
        if (syscall(SYS_keyctl, 1, o->s[0]) < 0 && errno != ENOSYS) DIE_ERRNO("keyctl(JOIN_SESSION_KEYRING) %s", o->s[0]);
        break;
    case OP_HOOKS_SYNC: {
        send_msg(sync_fd, "hooks", 5, -1);
        char buf[4096];
        ssize_t n = recv_msg(buf, sizeof buf, NULL);
        if (n < 0 || strcmp(buf, "hooks-done") != 0) die("%s", n >= 0 && strncmp(buf, "error:", 6) == 0 ? buf + 6 : "runtime went away");
        break;
    }
    case OP_HOOK: op_hook(o); break;
    case OP_PTY_OPEN: op_pty_open(o); break;
    case OP_PIVOT:
        if (root_fd >= 0) { close(root_fd); root_fd = -1; }
        op_pivot(o->s[0]);
        break;
    case OP_NOPIVOT:
        if (root_fd >= 0) { close(root_fd); root_fd = -1; }
        if (chdir(o->s[0]) != 0) DIE_ERRNO("chdir %s", o->s[0]);
        if (mount(o->s[0], "/", NULL, MS_MOVE, NULL) != 0) DIE_ERRNO("mount rootfs (move to /)");
        if (chroot(".") != 0) DIE_ERRNO("chroot %s", o->s[0]);
        if (chdir("/") != 0) DIE_ERRNO("chdir /");
        break;
    case OP_CHROOT:
        if (root_fd >= 0) { close(root_fd); root_fd = -1; }
        if (chroot(o->s[0]) != 0) DIE_ERRNO("chroot %s", o->s[0]);
        if ((o->flags & F_CHDIR_ROOT) && chdir("/") != 0) DIE_ERRNO("chdir /");
        break;
    case OP_MASK: op_mask(o->s[0]); break;
    case OP_READONLY: op_readonly(o->s[0]); break;
    case OP_SETHOSTNAME: if (sethostname(o->s[0], o->len[0]) != 0) DIE_ERRNO("sethostname %s", o->s[0]); break;
    case OP_SETDOMAINNAME: if (setdomainname(o->s[0], o->len[0]) != 0) DIE_ERRNO("setdomainname %s", o->s[0]); break;
    case OP_LOOPBACK: op_loopback(); break;
    case OP_SETSID: if (setsid() < 0) DIE_ERRNO("setsid"); break;
    case OP_PTY_CTTY: op_pty_ctty(); break;
    case OP_RLIMIT: {
        struct rlimit64 { uint64_t cur, max; } lim = { o->n[1], o->n[2] };
        if (syscall(SYS_prlimit64, 0, (int)o->n[0], &lim, NULL) != 0) DIE_ERRNO("setrlimit %s", o->s[0]);
        break;
    }
    case OP_CHDIR: op_chdir(o->s[0]); break;
    case OP_LOOKPATH: op_lookpath(o); break;
    case OP_RECV_LISTENER: {
        char buf[256];
        int passed = -1;
        ssize_t n = recv_msg(buf, sizeof buf, &passed);
        if (n < 0 || strcmp(buf, "seccomp-listener") != 0 || passed < 0) {
            if (passed >= 0) close(passed);
            die("no seccomp listener socket received");
        }
        listener_sock = passed;
        break;
    }
    case OP_SECCOMP: op_seccomp(o); break;
    case OP_READY: {
        send_msg(sync_fd, "ready", 5, -1);
        if (o->flags & F_WAIT_START) {
            /* `run`: the runtime gone (EOF) means no start: exit. */
            char buf[64];
            ssize_t n = recv_msg(buf, sizeof buf, NULL);
            if (n < 0 || strcmp(buf, "start") != 0) _exit(1);
        }
        close(sync_fd);
        sync_fd = -1;
        break;
    }
    case OP_FIFO_WAIT: {
        /* Opening the fifo for writing blocks until `start` opens it for reading. */
        char p[64];
        fd_path(fifo_fd, p, sizeof p);
        int w = open(p, O_WRONLY | O_CLOEXEC);
        if (w < 0) DIE_ERRNO("open exec fifo");
        char zero = '0';
        ssize_t r = write(w, &zero, 1);
        (void)r;
        close(w);
        close(fifo_fd);
        fifo_fd = -1;
        break;
    }
    case OP_CAPBSET_DROP:
        if (prctl(PR_CAPBSET_READ, (unsigned long)o->n[0], 0, 0, 0) <= 0) break;
        if (prctl(PR_CAPBSET_DROP, (unsigned long)o->n[0], 0, 0, 0) != 0) DIE_ERRNO("prctl(PR_CAPBSET_DROP) %s", o->s[0]);
        break;
    case OP_PRCTL:
        if (prctl((int)o->n[0], (unsigned long)o->n[1], 0, 0, 0) != 0) DIE_ERRNO("prctl %s", o->s[0]);
        break;
    case OP_SETIDS: op_setids(o); break;
    case OP_CAPSET: op_capset(o); break;
    case OP_AMBIENT_RAISE:
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long)o->n[0], 0, 0) != 0) DIE_ERRNO("prctl(PR_CAP_AMBIENT_RAISE) %s", o->s[0]);
        break;
    case OP_UMASK: umask((mode_t)o->n[0]); break;
    case OP_JOIN_LATE:
        /* "0" = the calling thread (v1 `tasks`) or this process (v2 `cgroup.procs`). */
        for (int i = 0; i < late_count; i++) {
            if (write(late_fd[i], "0", 1) < 0) DIE_ERRNO("join cgroup %s", late_path[i]);
            close(late_fd[i]);
        }
        late_count = 0;
        break;
    case OP_CLOSE_RANGE:
        /* Nothing but stdio and the preserved fds may cross into the container (CVE-2024-21626). */
        syscall(SYS_close_range, (unsigned int)o->n[0], ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
        break;
    case OP_SETNS_MNT: {
        int fd = open(o->s[0], O_RDONLY | O_CLOEXEC);
        if (fd < 0) DIE_ERRNO("open %s", o->s[0]);
        if (unshare(CLONE_FS) != 0) DIE_ERRNO("unshare 0x%x", CLONE_FS);
        if (setns(fd, CLONE_NEWNS) != 0) DIE_ERRNO("setns mount namespace of the container");
        close(fd);
        break;
    }
    case OP_EXEC: op_exec(o); break;
    case OP_WAIT: {
        char buf[256];
        ssize_t n = recv_msg(buf, sizeof buf, NULL);
        if (n < 0) _exit(1); /* the runtime went away (it kills init when it fails) */
        if (strcmp(buf, o->s[0]) != 0) die("unexpected message from the runtime: %s", buf);
        break;
    }
    default: die("init plan: unknown op %u", o->code);
    }
}

void berth_initexec(void);

void berth_initexec(void)
{
    const char *env = getenv(INIT_ENV);
    if (env == NULL) return;
    char *endp = NULL;
    errno = 0;
    long fd = strtol(env, &endp, 10);
    if (errno != 0 || endp == env || *endp != '\0' || fd < 0 || fd > 1 << 20) {
        fputs("berth-runc init: must be started by berth-runc\n", stderr);
        _exit(1);
    }
    unsetenv(INIT_ENV);
    sync_fd = (int)fd;
    fcntl(sync_fd, F_SETFD, FD_CLOEXEC);
    /* Not dumpable: processes in the container cannot ptrace init or open its /proc/PID/{exe,mem,
     * fd/...} (CVE-2019-5736 class) while it still runs the runtime's code. execve resets it. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

    static unsigned char plan[1 << 20];
    ssize_t n = recv_msg((char *)plan, sizeof plan, NULL);
    if (n < 0) _exit(1); /* the runtime went away */
    if (n < 8 || memcmp(plan, "BIP1", 4) != 0) die("init plan: bad header");
    cur = plan + 4;
    end = plan + n;
    uint32_t count = rd32();
    for (uint32_t i = 0; i < count; i++) {
        struct op o;
        next_op(&o);
        if (o.code == OP_MOUNT_IN_ROOT) {
            /* n2 alternative ops: carried out only when this mount fails with EPERM. */
            int failed = op_mount_in_root(&o);
            if (!failed) {
                for (uint64_t k = 0; k < o.n[2]; k++, i++) { struct op skip; next_op(&skip); free_op(&skip); }
            }
        } else run(&o);
        free_op(&o);
    }
    die("init plan: ended without exec");
}
