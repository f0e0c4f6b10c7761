/*
 * pincer-execd: the exec server inside a sandbox container.
 *
 * Started once per container as one long-lived, attached Engine exec (stdin attached,
 * no tty), it runs commands for the gateway over its stdin and stdout, so a command costs
 * a fork and an exec instead of an Engine exec (dockerd, containerd, the shim, two runc
 * processes and a seccomp compile). Commands inherit everything execd has: the
 * container's user, seccomp filter, capabilities (none), no-new-privileges, cgroup,
 * namespaces, read-only root. execd adds no privilege and needs none.
 *
 * Built as a static executable (any image, even one without a libc) by sandbox/build.rs
 * and bind-mounted read-only at /.pincer/execd.
 *
 * PROTOCOL (version 1). Every frame, both ways, is
 *
 *     u32 len | u8 type | u32 id | payload (len - 5 bytes)
 *
 * integers little-endian; `len` counts the type, id and payload; `str` below is a u32
 * length then that many bytes (no NUL). `id` names a command, chosen by the gateway
 * (unique among running commands); id 0 is execd itself.
 *
 * gateway -> execd
 *   'R' run    u32 timeout_ms (0: none) | u8 flags (1: stdin is a pipe, else /dev/null)
 *              | u64 max_output (bytes of stdout+stderr forwarded; the rest is read,
 *              counted and dropped) | str token | str cwd (empty: execd's) | u32 argc,
 *              argc x str | u32 envc, envc x str ("K=V", over execd's environment)
 *   'W' stdin  bytes to write to the command's stdin (buffered, written as it reads)
 *   'C' close  close the command's stdin once the buffered bytes are written
 *   'K' kill   kill the command's whole tree (as on timeout); ends with 'X', killed set
 * execd -> gateway
 *   'H' hello  (id 0) u32 protocol version | u32 execd's pid; sent once at start-up
 *   'S' start  u32 pid of the command
 *   'O' / 'E'  stdout / stderr bytes
 *   'X' exit   u8 how (0: exited, 1: killed by a signal) | i32 code or signal | u8 flags
 *              (1: timed out, 2: killed on request) | u64 bytes dropped over max_output;
 *              the last frame of a command: its output is complete
 *   'F' fail   the message (rest of the payload); the command did not start (fork
 *              failed, bad request) and no 'X' follows
 *
 * A command is `execvp(argv)` with the merged environment plus PINCER_EXEC_ID=<token>, in
 * a session of its own (setsid), with oom_score_adj 1000 (the OOM killer takes commands,
 * not execd), default signal dispositions and stdout/stderr on two pipes. It ends ('X')
 * when it has been reaped and both pipes are closed, or at its deadline / on 'K': then
 * the tree is killed and the pipes dropped. Killing the tree never forks (a fork bomb may
 * hold every pid): in rounds, until a round finds nothing, every process whose
 * /proc/<pid>/environ holds the token, and every process sharing a session or process
 * group with one of those or with the command, is stopped then killed; execd and PID 1
 * are spared. execd reaps only its own children (it is not a subreaper): orphans go to
 * the container's init, which reaps them.
 *
 * When its stdin closes (the gateway went away) or its stdout breaks, execd kills every
 * running command's tree and exits. At start it copies PID 1's open-files limits to
 * itself (runc issue 4195: runc 1.1.5 may start an exec with the soft limit raised), so
 * its commands inherit the container's limits. Diagnostics go to stderr, one line each.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROTOCOL_VERSION 1
#define MARK_VAR "PINCER_EXEC_ID="
#define MAX_FRAME (64u << 20)
#define READ_CHUNK 65536
/* Stop reading commands' output while this much is waiting to reach the gateway. */
#define OUT_HIGH_WATER (4u << 20)
/* Killing a tree gives up after this many rounds or this long. */
#define KILL_ROUNDS 2000
#define KILL_MAX_MS 3000

struct buf {
    unsigned char *data;
    size_t len, cap;
};

struct cmd {
    uint32_t id;
    pid_t pid;
    int out_fd, err_fd, in_fd; /* -1 when closed */
    struct buf in;             /* stdin waiting to be written */
    int close_in;              /* close stdin once `in` is written */
    char token[80];
    uint64_t max_output, forwarded, dropped;
    int64_t deadline_ms; /* 0: none */
    int reaped, status;
    int timed_out, killed;
    struct cmd *next;
};

static struct cmd *cmds;
static struct buf inbuf, outbuf;
static int in_open = 1;
static volatile sig_atomic_t got_sigchld;

static void logf_(const char *fmt, const char *a, const char *b) {
    char line[512];
    int n = snprintf(line, sizeof line, fmt, a, b);
    if (n > 0) {
        if ((size_t)n >= sizeof line) n = sizeof line - 1;
        line[n++] = '\n';
        ssize_t w = write(2, line, (size_t)n);
        (void)w;
    }
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void buf_reserve(struct buf *b, size_t more) {
    if (b->len + more <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) cap *= 2;
    unsigned char *d = realloc(b->data, cap);
    if (!d) {
        logf_("execd: out of memory%s%s", "", "");
        _exit(3);
    }
    b->data = d;
    b->cap = cap;
}

static void buf_put(struct buf *b, const void *p, size_t n) {
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void buf_consume(struct buf *b, size_t n) {
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Queues one frame for the gateway: header, then `n1` + `n2` bytes of payload. */
static void send_frame(char type, uint32_t id, const void *p1, size_t n1, const void *p2,
                       size_t n2) {
    unsigned char h[9];
    put_u32(h, (uint32_t)(5 + n1 + n2));
    h[4] = (unsigned char)type;
    put_u32(h + 5, id);
    buf_put(&outbuf, h, sizeof h);
    if (n1) buf_put(&outbuf, p1, n1);
    if (n2) buf_put(&outbuf, p2, n2);
}

static void send_fail(uint32_t id, const char *what, int err) {
    char msg[300];
    int n = snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
    send_frame('F', id, msg, n > 0 ? (size_t)n : 0, NULL, 0);
}

static void set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static struct cmd *find_cmd(uint32_t id) {
    for (struct cmd *c = cmds; c; c = c->next)
        if (c->id == id) return c;
    return NULL;
}

static void close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* ---- killing a tree, without forking ---------------------------------------------- */

/* state, pgrp and session of `pid` from /proc/<pid>/stat; 0 on success. */
static int proc_stat(long pid, char *state, long *pgrp, long *sid) {
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return -1;
    text[n] = 0;
    char *rp = strrchr(text, ')');
    if (!rp) return -1;
    long ppid;
    if (sscanf(rp + 1, " %c %ld %ld %ld", state, &ppid, pgrp, sid) != 4) return -1;
    return 0;
}

/* Whether /proc/<pid>/environ holds `needle` (read in chunks, overlapping). */
static int environ_has(long pid, const char *needle) {
    char path[64];
    static char chunk[65536 + 128];
    size_t nl = strlen(needle), keep = 0;
    snprintf(path, sizeof path, "/proc/%ld/environ", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int found = 0;
    for (;;) {
        ssize_t n = read(fd, chunk + keep, sizeof chunk - 128 - keep);
        if (n <= 0) break;
        size_t have = keep + (size_t)n;
        if (memmem(chunk, have, needle, nl)) {
            found = 1;
            break;
        }
        keep = nl - 1 < have ? nl - 1 : have;
        memmove(chunk, chunk + have - keep, keep);
    }
    close(fd);
    return found;
}

static int in_list(const long *v, int n, long x) {
    for (int i = 0; i < n; i++)
        if (v[i] == x) return 1;
    return 0;
}

#define MAX_TRACK 8192

/* The next process in /proc that is alive (not a zombie), not execd and not PID 1, with
 * its process group and session; 0 at the end. */
static long next_live(DIR *d, long self, long *pgrp, long *sid) {
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        long pid = atol(e->d_name);
        char st;
        if (pid == self || pid == 1 || proc_stat(pid, &st, pgrp, sid) || st == 'Z' || st == 'X')
            continue;
        return pid;
    }
    return 0;
}

/* Kills, in rounds, every process marked with `token` and every process in the sessions
 * and process groups of those and of `sid` (the command's own, 0: none). Returns 0 when
 * a round found nothing left, -1 when it gave up. A session or group id taken from a
 * live process cannot name anything else: Linux does not reuse a pid while it is in use
 * as one. */
static int kill_tree(const char *token, long sid) {
    static long groups[MAX_TRACK], victims[MAX_TRACK];
    char needle[128];
    snprintf(needle, sizeof needle, MARK_VAR "%s", token);
    long self = getpid(), own_pgrp = getpgrp(), own_sid = getsid(0);
    int64_t give_up = now_ms() + KILL_MAX_MS;
    for (int round = 0; round < KILL_ROUNDS; round++) {
        int ng = 0, nv = 0;
        if (sid > 1) groups[ng++] = sid;
        DIR *d = opendir("/proc");
        if (!d) return -1;
        long pid, pg, ss;
        /* Pass 1: marked processes and their groups. */
        while ((pid = next_live(d, self, &pg, &ss)) > 0) {
            if (!environ_has(pid, needle)) continue;
            if (nv < MAX_TRACK) victims[nv++] = pid;
            if (pg > 1 && ng < MAX_TRACK && !in_list(groups, ng, pg)) groups[ng++] = pg;
            if (ss > 1 && ng < MAX_TRACK && !in_list(groups, ng, ss)) groups[ng++] = ss;
        }
        /* Pass 2: everything sharing one of those sessions or groups. */
        rewinddir(d);
        while ((pid = next_live(d, self, &pg, &ss)) > 0)
            if ((in_list(groups, ng, pg) || in_list(groups, ng, ss)) && !in_list(victims, nv, pid) &&
                nv < MAX_TRACK)
                victims[nv++] = pid;
        closedir(d);
        if (nv == 0) return 0;
        for (int i = 0; i < nv; i++) kill((pid_t)victims[i], SIGSTOP);
        for (int i = 0; i < ng; i++)
            if (groups[i] > 1 && groups[i] != own_pgrp && groups[i] != own_sid)
                kill((pid_t)-groups[i], SIGKILL);
        for (int i = 0; i < nv; i++) kill((pid_t)victims[i], SIGKILL);
        if (now_ms() > give_up) break;
        /* Let the killed exit before looking again (they show as running until then). */
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
    return -1;
}

static void kill_cmd(struct cmd *c) {
    /* Once reaped, the command's pid may name another process: only the marked ones. */
    if (kill_tree(c->token, c->reaped ? 0 : c->pid) != 0)
        logf_("execd: could not kill every process of command %s%s (gave up)", c->token, "");
    /* Whatever still holds the pipes (nothing, unless a process would not die) is no
     * longer listened to. */
    close_fd(&c->out_fd);
    close_fd(&c->err_fd);
    close_fd(&c->in_fd);
}

/* ---- running a command ------------------------------------------------------------- */

struct reader {
    const unsigned char *p;
    size_t left;
    int bad;
};

static const unsigned char *take(struct reader *r, size_t n) {
    if (r->bad || r->left < n) {
        r->bad = 1;
        return NULL;
    }
    const unsigned char *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static uint32_t take_u32(struct reader *r) {
    const unsigned char *p = take(r, 4);
    return p ? get_u32(p) : 0;
}

/* A NUL-terminated copy of the next string (malloc'd), NULL when malformed. */
static char *take_str(struct reader *r) {
    uint32_t n = take_u32(r);
    const unsigned char *p = take(r, n);
    if (!p) return NULL;
    if (memchr(p, 0, n)) {
        r->bad = 1;
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) _exit(3);
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

static void free_strs(char **v) {
    if (!v) return;
    for (char **p = v; *p; p++) free(*p);
    free(v);
}

/* The child's environment: execd's, with `over` replacing same-named variables, then
 * the marker. */
static char **merge_env(char **over, int n_over, const char *mark) {
    extern char **environ;
    int n = 0;
    while (environ[n]) n++;
    char **env = calloc((size_t)(n + n_over + 2), sizeof *env);
    if (!env) _exit(3);
    int k = 0;
    for (int i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t kl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int replaced = !strncmp(environ[i], MARK_VAR, sizeof MARK_VAR - 1);
        for (int j = 0; j < n_over && !replaced; j++)
            if (!strncmp(over[j], environ[i], kl) && over[j][kl] == '=') replaced = 1;
        if (!replaced) env[k++] = environ[i];
    }
    for (int j = 0; j < n_over; j++) env[k++] = over[j];
    env[k++] = (char *)mark;
    env[k] = NULL;
    return env;
}

static void child_fail(const char *what, const char *arg) {
    int err = errno;
    char msg[600];
    int n = snprintf(msg, sizeof msg, "execd: %s %s: %s\n", what, arg, strerror(err));
    if (n > 0) {
        ssize_t w = write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
        (void)w;
    }
    _exit(err == ENOENT ? 127 : 126);
}

static void on_run(uint32_t id, struct reader *r) {
    uint32_t timeout_ms = take_u32(r);
    const unsigned char *flags = take(r, 1);
    const unsigned char *maxp = take(r, 8);
    char *token = take_str(r), *cwd = take_str(r);
    uint32_t argc = take_u32(r);
    char **argv = NULL, **over = NULL;
    uint32_t envc = 0;
    if (!r->bad && argc > 0 && argc < 65536) {
        argv = calloc(argc + 1, sizeof *argv);
        if (!argv) _exit(3);
        for (uint32_t i = 0; i < argc && !r->bad; i++) argv[i] = take_str(r);
        envc = take_u32(r);
        if (!r->bad && envc < 65536) {
            over = calloc(envc + 1, sizeof *over);
            if (!over) _exit(3);
            for (uint32_t i = 0; i < envc && !r->bad; i++) over[i] = take_str(r);
        } else {
            r->bad = 1;
        }
    } else {
        r->bad = 1;
    }
    const char *why = NULL;
    if (r->bad) why = "malformed run request";
    else if (!token || !*token || strlen(token) >= sizeof(((struct cmd *)0)->token)) why = "bad token";
    else if (find_cmd(id)) why = "a command with this id is running";
    if (why) {
        send_frame('F', id, why, strlen(why), NULL, 0);
        goto out;
    }
    int out[2] = {-1, -1}, err[2] = {-1, -1}, in[2] = {-1, -1};
    if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) ||
        ((flags[0] & 1) ? pipe2(in, O_CLOEXEC) : (in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)) {
        send_fail(id, "pipe", errno);
        for (int i = 0; i < 2; i++) {
            if (out[i] >= 0) close(out[i]);
            if (err[i] >= 0) close(err[i]);
            if (in[i] >= 0) close(in[i]);
        }
        goto out;
    }
    char mark[160];
    snprintf(mark, sizeof mark, MARK_VAR "%s", token);
    char **env = merge_env(over, (int)envc, mark);
    pid_t pid = fork();
    if (pid == 0) {
        extern char **environ;
        setsid();
        int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t w = write(fd, "1000", 4);
            (void)w;
            close(fd);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0) _exit(126);
        if (*cwd && chdir(cwd)) child_fail("chdir", cwd);
        environ = env;
        execvp(argv[0], argv);
        child_fail("exec", argv[0]);
    }
    int fork_err = errno;
    free(env);
    close(out[1]);
    close(err[1]);
    close(in[0]);
    if (pid < 0) {
        close(out[0]);
        close(err[0]);
        if (in[1] >= 0) close(in[1]);
        send_fail(id, "fork", fork_err);
        goto out;
    }
    struct cmd *c = calloc(1, sizeof *c);
    if (!c) _exit(3);
    c->id = id;
    c->pid = pid;
    c->out_fd = out[0];
    c->err_fd = err[0];
    c->in_fd = in[1];
    set_nonblock(c->out_fd);
    set_nonblock(c->err_fd);
    if (c->in_fd >= 0) set_nonblock(c->in_fd);
    snprintf(c->token, sizeof c->token, "%s", token);
    uint64_t max = 0;
    for (int i = 7; i >= 0; i--) max = max << 8 | maxp[i];
    c->max_output = max;
    c->deadline_ms = timeout_ms ? now_ms() + timeout_ms : 0;
    c->next = cmds;
    cmds = c;
    unsigned char p[4];
    put_u32(p, (uint32_t)pid);
    send_frame('S', id, p, 4, NULL, 0);
out:
    free(token);
    free(cwd);
    free_strs(argv);
    free_strs(over);
}

/* ---- the loop --------------------------------------------------------------------- */

static void on_frame(char type, uint32_t id, const unsigned char *p, size_t n) {
    struct reader r = {p, n, 0};
    struct cmd *c = type == 'R' ? NULL : find_cmd(id);
    switch (type) {
    case 'R':
        on_run(id, &r);
        break;
    case 'W':
        if (c && c->in_fd >= 0 && !c->close_in) buf_put(&c->in, p, n);
        break;
    case 'C':
        if (c) c->close_in = 1;
        break;
    case 'K':
        if (c && !c->killed && !c->timed_out) {
            c->killed = 1;
            kill_cmd(c);
        }
        break;
    default:
        logf_("execd: unknown frame type %c%s", (char[]){type, 0}, "");
    }
}

static void parse_input(void) {
    size_t at = 0;
    while (inbuf.len - at >= 9) {
        uint32_t len = get_u32(inbuf.data + at);
        if (len < 5 || len > MAX_FRAME) {
            logf_("execd: protocol error (frame length)%s%s", "", "");
            _exit(2);
        }
        if (inbuf.len - at < 4 + (size_t)len) break;
        const unsigned char *f = inbuf.data + at + 4;
        on_frame((char)f[0], get_u32(f + 1), f + 5, len - 5);
        at += 4 + (size_t)len;
    }
    buf_consume(&inbuf, at);
}

/* Reads what a command wrote to one pipe; forwards up to its max_output. */
static void pump(struct cmd *c, int *fd, char type) {
    static unsigned char chunk[READ_CHUNK];
    ssize_t n = read(*fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        close_fd(fd);
        return;
    }
    uint64_t room = c->max_output > c->forwarded ? c->max_output - c->forwarded : 0;
    size_t send = (uint64_t)n < room ? (size_t)n : (size_t)room;
    if (send) send_frame(type, c->id, chunk, send, NULL, 0);
    c->forwarded += send;
    c->dropped += (uint64_t)n - send;
}

static void finish(struct cmd *c) {
    unsigned char p[14];
    int sig = WIFSIGNALED(c->status);
    p[0] = (unsigned char)sig;
    put_u32(p + 1, (uint32_t)(sig ? WTERMSIG(c->status) : WEXITSTATUS(c->status)));
    p[5] = (unsigned char)((c->timed_out ? 1 : 0) | (c->killed ? 2 : 0));
    for (int i = 0; i < 8; i++) p[6 + i] = (unsigned char)(c->dropped >> (8 * i));
    send_frame('X', c->id, p, sizeof p, NULL, 0);
}

static void reap(void) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        for (struct cmd *c = cmds; c; c = c->next)
            if (c->pid == pid) {
                c->reaped = 1;
                c->status = status;
            }
}

static void kill_all_and_exit(int code) {
    for (struct cmd *c = cmds; c; c = c->next)
        kill_tree(c->token, c->reaped ? 0 : c->pid);
    _exit(code);
}

static void on_sigchld(int sig) {
    (void)sig;
    got_sigchld = 1;
}

/* PID 1's open-files limits (see the header), lowering ours when needed. */
static void copy_pid1_nofile(void) {
    FILE *f = fopen("/proc/1/limits", "re");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "Max open files", 14)) continue;
        char soft[32], hard[32];
        if (sscanf(line + 14, "%31s %31s", soft, hard) != 2) break;
        struct rlimit want, cur;
        want.rlim_cur = strcmp(soft, "unlimited") ? strtoull(soft, NULL, 10) : RLIM_INFINITY;
        want.rlim_max = strcmp(hard, "unlimited") ? strtoull(hard, NULL, 10) : RLIM_INFINITY;
        if (setrlimit(RLIMIT_NOFILE, &want) && !getrlimit(RLIMIT_NOFILE, &cur)) {
            /* PID 1's hard limit is above ours: keep ours, take its soft within it. */
            want.rlim_max = cur.rlim_max;
            if (want.rlim_cur > cur.rlim_max) want.rlim_cur = cur.rlim_max;
            setrlimit(RLIMIT_NOFILE, &want);
        }
        break;
    }
    fclose(f);
}

int main(void) {
    copy_pid1_nofile();
    signal(SIGPIPE, SIG_IGN);
    sigset_t chld, orig;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &orig);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigchld;
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t wait_mask = orig;
    sigdelset(&wait_mask, SIGCHLD);
    set_nonblock(0);
    set_nonblock(1);
    /* Nothing of ours reaches a command: 0 and 1 are replaced in the child, 2 too. */
    fcntl(0, F_SETFD, FD_CLOEXEC);
    fcntl(1, F_SETFD, FD_CLOEXEC);
    unsigned char hello[8];
    put_u32(hello, PROTOCOL_VERSION);
    put_u32(hello + 4, (uint32_t)getpid());
    send_frame('H', 0, hello, sizeof hello, NULL, 0);

    static struct pollfd pfds[1 + 3 * 4096];
    static struct cmd *owner[1 + 3 * 4096];
    for (;;) {
        /* Finished commands: reaped, output complete. */
        reap();
        got_sigchld = 0;
        int64_t now = now_ms();
        for (struct cmd **pp = &cmds; *pp;) {
            struct cmd *c = *pp;
            if (c->deadline_ms && now >= c->deadline_ms && !c->timed_out && !c->killed) {
                c->timed_out = 1;
                kill_cmd(c);
                reap();
            }
            if (c->in_fd >= 0 && c->close_in && c->in.len == 0) close_fd(&c->in_fd);
            if (c->reaped && c->out_fd < 0 && c->err_fd < 0) {
                finish(c);
                close_fd(&c->in_fd);
                free(c->in.data);
                *pp = c->next;
                free(c);
                continue;
            }
            pp = &c->next;
        }
        if (!in_open && !cmds && outbuf.len == 0) _exit(0);

        int n = 0;
        int64_t wait_ms = -1;
        if (in_open) pfds[n++] = (struct pollfd){.fd = 0, .events = POLLIN};
        if (outbuf.len) pfds[n++] = (struct pollfd){.fd = 1, .events = POLLOUT};
        int base = n;
        int reading = outbuf.len < OUT_HIGH_WATER;
        for (struct cmd *c = cmds; c && n < (int)(sizeof pfds / sizeof *pfds) - 3; c = c->next) {
            if (reading && c->out_fd >= 0) owner[n] = c, pfds[n++] = (struct pollfd){c->out_fd, POLLIN, 0};
            if (reading && c->err_fd >= 0) owner[n] = c, pfds[n++] = (struct pollfd){c->err_fd, POLLIN, 0};
            if (c->in_fd >= 0 && c->in.len) owner[n] = c, pfds[n++] = (struct pollfd){c->in_fd, POLLOUT, 0};
            if (c->deadline_ms) {
                int64_t left = c->deadline_ms - now;
                if (left < 0) left = 0;
                if (wait_ms < 0 || left < wait_ms) wait_ms = left;
            }
        }
        struct timespec ts, *tsp = NULL;
        if (wait_ms >= 0) {
            ts.tv_sec = wait_ms / 1000;
            ts.tv_nsec = (wait_ms % 1000) * 1000000 + 999999; /* round up: no busy loop */
            if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
            tsp = &ts;
        }
        if (got_sigchld) continue;
        int rc = ppoll(pfds, (nfds_t)n, tsp, &wait_mask);
        if (rc < 0) {
            if (errno == EINTR) continue;
            logf_("execd: poll: %s%s", strerror(errno), "");
            kill_all_and_exit(2);
        }
        for (int i = 0; i < n; i++) {
            if (!pfds[i].revents) continue;
            int fd = pfds[i].fd;
            if (i < base && fd == 0) {
                buf_reserve(&inbuf, READ_CHUNK);
                ssize_t got = read(0, inbuf.data + inbuf.len, READ_CHUNK);
                if (got > 0) {
                    inbuf.len += (size_t)got;
                    parse_input();
                } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                    in_open = 0;
                    kill_all_and_exit(0);
                }
            } else if (i < base && fd == 1) {
                ssize_t w = write(1, outbuf.data, outbuf.len);
                if (w > 0) buf_consume(&outbuf, (size_t)w);
                else if (w < 0 && errno != EAGAIN && errno != EINTR) kill_all_and_exit(0);
            } else {
                struct cmd *c = owner[i];
                /* The command may have been killed (pipes closed) by a frame above. */
                if (fd == c->out_fd) pump(c, &c->out_fd, 'O');
                else if (fd == c->err_fd) pump(c, &c->err_fd, 'E');
                else if (fd == c->in_fd) {
                    ssize_t w = write(c->in_fd, c->in.data, c->in.len);
                    if (w > 0) buf_consume(&c->in, (size_t)w);
                    else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                        c->in.len = 0; /* the command closed its stdin */
                        close_fd(&c->in_fd);
                    }
                }
            }
        }
    }
}
