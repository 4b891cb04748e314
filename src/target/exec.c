/* target/exec.c: runs a program per alert with the body on stdin; or a Python function the way Lambda
 * would call it (handler: module.function), so an existing Lambda handler runs unchanged.
 *
 * No shell: argv is given as a list. The child runs in its own process group so that a timeout
 * kills everything it started. Its environment is minimal and predictable (PATH, HOME, LANG, TZ),
 * plus the server's own AWS_* variables (as a Lambda function gets its role's credentials), plus the
 * configured ones. Exit 0 is delivered; 126/127 (cannot run, not found) will never work; any other
 * failure is retried, like Lambda's asynchronous retries. */
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/vec.h"
#include "common/uuid.h"
#include "target/exec_int.h"
#include "target/kinds.h"

extern char **environ;

#define OUTPUT_KEEP 4096           /* bytes of stdout+stderr kept (the last ones, for the reason) */
#define KILL_GRACE_MS 2000         /* SIGTERM, then SIGKILL this much later */
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the environment ---- */

typedef struct envlist {
    char **v;
    size_t n, cap;
    int failed;
} envlist;

/* Sets NAME=value, replacing an earlier NAME (later settings win). */
static void env_set(envlist *e, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    if (TW_VEC_RESERVE(e, 2)) {        /* this one and the NULL that ends the list */
        e->failed = 1;
        return;
    }
    char *kv = malloc(nl + vl + 2);
    if (!kv) {
        e->failed = 1;
        return;
    }
    memcpy(kv, name, nl);
    kv[nl] = '=';
    memcpy(kv + nl + 1, value, vl + 1);
    for (size_t i = 0; i < e->n; i++)
        if (strncmp(e->v[i], kv, nl + 1) == 0) {
            free(e->v[i]);
            e->v[i] = kv;
            return;
        }
    e->v[e->n++] = kv;
    e->v[e->n] = NULL;
}

static void env_free(envlist *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i]);
    free(e->v);
}

static pthread_mutex_t env_hook_lock = PTHREAD_MUTEX_INITIALIZER;
static tw_exec_env_fn env_hook;
static void *env_hook_ctx;

void tw__target_exec_env(tw_exec_env_fn fn, void *ctx)
{
    pthread_mutex_lock(&env_hook_lock);
    env_hook = fn;
    env_hook_ctx = ctx;
    pthread_mutex_unlock(&env_hook_lock);
}

/* The installed provider's lines (trailwatch's AWS settings), after the server's own AWS_*. */
static void hook_env(envlist *e)
{
    pthread_mutex_lock(&env_hook_lock);
    char **lines = env_hook ? env_hook(env_hook_ctx) : NULL;
    pthread_mutex_unlock(&env_hook_lock);
    for (char **p = lines; p && *p; p++) {
        const char *eq = strchr(*p, '=');
        if (eq && eq - *p < 256) {
            char name[256];
            memcpy(name, *p, (size_t)(eq - *p));
            name[eq - *p] = '\0';
            env_set(e, name, eq + 1);
        }
        explicit_bzero(*p, strlen(*p)); /* credentials */
        free(*p);
    }
    free(lines);
}

static void build_env(const tw_exec *x, const char *request_id, int64_t deadline_wall, envlist *e)
{
    const char *path = getenv("PATH"), *home = getenv("HOME");
    env_set(e, "PATH", path && *path ? path : DEFAULT_PATH);
    env_set(e, "HOME", home && *home ? home : "/");
    env_set(e, "LANG", "C.UTF-8");
    env_set(e, "TZ", "UTC");
    for (char **p = environ; p && *p; p++) {   /* credentials and profile of the server */
        const char *eq = strchr(*p, '=');
        if (strncmp(*p, "AWS_", 4) == 0 && eq && eq - *p < 256) {
            char name[256];
            memcpy(name, *p, (size_t)(eq - *p));
            name[eq - *p] = '\0';
            env_set(e, name, eq + 1);
        }
    }
    hook_env(e);
    if (x->region) {
        env_set(e, "AWS_REGION", x->region);
        env_set(e, "AWS_DEFAULT_REGION", x->region);
    }
    for (size_t i = 0; i < x->nenv; i++)
        env_set(e, x->env_names[i], x->env_values[i]);
    /* Set last: what trailwatch itself guarantees, like Lambda's reserved variables. */
    env_set(e, "TW_DELIVERY_ID", request_id);
    if (x->module) {
        char num[32];
        env_set(e, "TW_REQUEST_ID", request_id);
        snprintf(num, sizeof num, "%lld", (long long)deadline_wall);
        env_set(e, "TW_DEADLINE_MS", num);
        env_set(e, "AWS_LAMBDA_FUNCTION_NAME", x->function_name);
        env_set(e, "AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
        snprintf(num, sizeof num, "%ld", x->memory_size);
        env_set(e, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", num);
        env_set(e, "LAMBDA_TASK_ROOT", x->code_dir);
        env_set(e, "_HANDLER", x->handler);
        env_set(e, "PYTHONDONTWRITEBYTECODE", "1");   /* leave the code directory as it is */
    }
}

/* ---- running ---- */

typedef struct run {
    char out[OUTPUT_KEEP];
    size_t outlen;
    int status;                    /* from waitpid */
    int timed_out;
    int cancelled;                 /* stopped early by tw__target_cancel_local */
} run;

static void keep_output(run *r, const char *p, size_t n)
{
    if (n >= OUTPUT_KEEP) {
        memcpy(r->out, p + n - OUTPUT_KEEP, OUTPUT_KEEP);
        r->outlen = OUTPUT_KEEP;
        return;
    }
    if (r->outlen + n > OUTPUT_KEEP) {
        size_t drop = r->outlen + n - OUTPUT_KEEP;
        memmove(r->out, r->out + drop, r->outlen - drop);
        r->outlen -= drop;
    }
    memcpy(r->out + r->outlen, p, n);
    r->outlen += n;
}

/* Set by tw__target_cancel_local when the server stops and its drain time is up. */
static _Atomic int cancel_local;

void tw__target_cancel_local(int on) { atomic_store(&cancel_local, on); }

/* 1 once pid has exited, waiting at most ms. It is not reaped (WNOWAIT): while it is a zombie its id
 * stays reserved, so signalling its process group afterwards cannot hit an unrelated process. */
static int exited(pid_t pid, int64_t ms)
{
    int64_t end = now_ms() + ms;
    for (;;) {
        siginfo_t si;
        si.si_pid = 0;
        int rc = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if ((rc == 0 && si.si_pid == pid) || (rc < 0 && errno != EINTR))
            return 1;
        if (now_ms() >= end)
            return 0;
        poll(NULL, 0, 10);
    }
}

/* Reads what the child has written so far (non-blocking); closes *fd at end of file. */
static void drain(int *fd, run *r)
{
    char buf[4096];
    for (int i = 0; *fd >= 0 && i < 256; i++) {   /* bounded: a grandchild may keep writing */
        ssize_t k = read(*fd, buf, sizeof buf);
        if (k > 0) {
            keep_output(r, buf, (size_t)k);
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k == 0 || errno != EAGAIN) {
            close(*fd);
            *fd = -1;
        }
        return;
    }
}

/* Feeds body to the child's stdin and collects its output until it exits or the deadline passes.
 * The child's exit is noticed by polling waitid, not by end of output: a grandchild may keep the
 * pipes open. Afterwards its process group is signalled: what it left running dies with it. */
static void supervise(pid_t pid, int in, int out, const char *body, size_t len, int64_t timeout_ms, run *r)
{
    int64_t deadline = now_ms() + timeout_ms;
    size_t sent = 0;
    if (len == 0) {
        close(in);
        in = -1;
    }
    for (;;) {
        if (exited(pid, 0)) {
            drain(&out, r);
            break;
        }
        int64_t left = deadline - now_ms();
        if (left <= 0 || atomic_load(&cancel_local)) {
            r->timed_out = 1;
            r->cancelled = left > 0;
            break;
        }
        struct pollfd fds[2];
        nfds_t n = 0;
        if (out >= 0)
            fds[n++] = (struct pollfd){out, POLLIN, 0};
        if (in >= 0)
            fds[n++] = (struct pollfd){in, POLLOUT, 0};
        if (poll(fds, n, (int)(left < 20 ? left : 20)) <= 0)
            continue;
        for (nfds_t i = 0; i < n; i++) {
            if (!fds[i].revents)
                continue;
            if (fds[i].fd == out) {
                drain(&out, r);
                continue;
            }
            ssize_t k = write(in, body + sent, len - sent);
            if (k > 0)
                sent += (size_t)k;
            if ((k < 0 && errno != EAGAIN && errno != EINTR) || sent == len) {
                close(in);                     /* all sent, or EPIPE: the program does not read it */
                in = -1;
            }
        }
    }
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (r->timed_out) {
        kill(-pid, SIGTERM);
        exited(pid, KILL_GRACE_MS);
        kill(-pid, SIGKILL);                   /* the leader, or what it left behind */
    } else {
        kill(-pid, SIGTERM);                   /* leftovers: a finished delivery owns no processes */
    }
    while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR) {
    }
}

/* The line of a program's output that says what went wrong: the last non-empty line that does not
 * start with white space (a Python traceback ends with "HTTPError: HTTP Error 500: ...", a Node.js
 * stack begins with "Error: ..." followed by indented "at" lines), else the last non-empty line. */
static void last_meaningful_line(const char *out, size_t n, size_t *start, size_t *end)
{
    size_t best_s = 0, best_e = 0, any_s = 0, any_e = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && out[j] != '\n')
            j++;
        size_t e = j;
        while (e > i && (unsigned char)out[e - 1] <= ' ')
            e--;                               /* trailing white space and \r */
        if (e > i) {
            any_s = i, any_e = e;
            if ((unsigned char)out[i] > ' ')
                best_s = i, best_e = e;
        }
        i = j + 1;
    }
    *start = best_e ? best_s : any_s;
    *end = best_e ? best_e : any_e;
}

/* why = "<what>: <the meaningful line of the program's output>", on one line. */
static void reason(char *why, size_t why_len, const run *r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void reason(char *why, size_t why_len, const run *r, const char *fmt, ...)
{
    if (!why || why_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    size_t len = strlen(why), start = 0, end = 0;
    if (r && r->outlen)
        last_meaningful_line(r->out, r->outlen, &start, &end);
    if (end == start || len + 3 >= why_len)
        return;
    size_t room = why_len - len - 3;
    if (end - start > room) {                  /* keep its start: the exception's name comes first */
        end = start + room;
        while (end > start && ((unsigned char)r->out[end] & 0xc0) == 0x80)
            end--;                             /* end on a character */
    }
    why[len++] = ':';
    why[len++] = ' ';
    for (size_t i = start; i < end; i++) {
        unsigned char c = (unsigned char)r->out[i];
        why[len++] = c == '\t' ? ' ' : c < ' ' || c == 0x7f ? '?' : (char)c;
    }
    why[len] = '\0';
}

static tw_outcome spawn_failed(const tw_exec *x, int e, char *why, size_t why_len)
{
    reason(why, why_len, NULL, "cannot run %s: %s", x->argv[0], strerror(e));
    switch (e) {
    case ENOENT: case EACCES: case ENOEXEC: case ENOTDIR: case ELOOP: case ENAMETOOLONG: case EISDIR: case EPERM:
        return TW_OUTCOME_PERMANENT;           /* like exit 126/127: it will not work next time either */
    default:
        return TW_OUTCOME_RETRY;               /* EAGAIN, ENOMEM, EMFILE: the machine is busy */
    }
}

static tw_outcome deliver(const void *impl, const char *body, size_t len, int64_t timeout_ms, char *why,
                          size_t why_len)
{
    const tw_exec *x = impl;
    if (timeout_ms <= 0)
        timeout_ms = DEFAULT_TIMEOUT_MS;
    if (x->cwd && access(x->cwd, X_OK) != 0) {
        reason(why, why_len, NULL, "cwd %s: %s", x->cwd, strerror(errno));
        return TW_OUTCOME_PERMANENT;
    }
    char id[TW_UUID_LEN + 1];
    tw__uuid4(id);                             /* one per delivery: aws_request_id, TW_DELIVERY_ID */
    envlist env = {0};
    build_env(x, id, wall_ms() + timeout_ms, &env);
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    if (env.failed || pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
        int e = env.failed ? ENOMEM : errno;
        for (int i = 0; i < 2; i++) {
            if (in[i] >= 0)
                close(in[i]);
            if (out[i] >= 0)
                close(out[i]);
        }
        env_free(&env);
        reason(why, why_len, NULL, "cannot start %s: %s", x->argv[0], strerror(e));
        return TW_OUTCOME_RETRY;
    }

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, out[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);   /* the server's sockets and files stay ours */
    if (x->cwd)
        posix_spawn_file_actions_addchdir_np(&fa, x->cwd);
    sigset_t none, dfl, pipe_set, old, pending;
    sigemptyset(&none);
    sigemptyset(&dfl);
    static const int reset[] = {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM};
    for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++)
        sigaddset(&dfl, reset[i]);             /* ignored signals would stay ignored across exec */
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dfl);

    /* Writing to a program that does not read its input raises SIGPIPE, which would end the server:
     * block it on this thread while we write, and consume the one we caused. */
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    sigpending(&pending);
    int pipe_was_pending = sigismember(&pending, SIGPIPE);

    pid_t pid;
    int e = strchr(x->argv[0], '/') ? posix_spawn(&pid, x->argv[0], &fa, &at, x->argv, env.v)
                                    : posix_spawnp(&pid, x->argv[0], &fa, &at, x->argv, env.v);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(in[0]);
    close(out[1]);
    env_free(&env);
    tw_outcome o;
    if (e != 0) {
        close(in[1]);
        close(out[0]);
        o = spawn_failed(x, e, why, why_len);
    } else {
        fcntl(in[1], F_SETFL, O_NONBLOCK);
        fcntl(out[0], F_SETFL, O_NONBLOCK);
        run r;
        memset(&r, 0, sizeof r);
        supervise(pid, in[1], out[0], body, len, timeout_ms, &r);
        if (r.cancelled) {
            reason(why, why_len, &r, "stopped: trailwatch was shutting down (it runs again at the next start)");
            o = TW_OUTCOME_RETRY;
        } else if (r.timed_out) {
            reason(why, why_len, &r, "timed out after %lld ms", (long long)timeout_ms);
            o = TW_OUTCOME_RETRY;
        } else if (WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) {
            o = TW_OUTCOME_DELIVERED;
        } else if (WIFEXITED(r.status)) {
            int st = WEXITSTATUS(r.status);
            reason(why, why_len, &r, "%s exited with status %d%s", x->argv[0], st,
                   st == 126 ? " (cannot run)" : st == 127 ? " (not found)" : "");
            o = st == 126 || st == 127 ? TW_OUTCOME_PERMANENT : TW_OUTCOME_RETRY;
        } else {
            int sig = WIFSIGNALED(r.status) ? WTERMSIG(r.status) : 0;
            reason(why, why_len, &r, "%s killed by signal %d (%s)", x->argv[0], sig, strsignal(sig));
            o = TW_OUTCOME_RETRY;
        }
    }
    sigpending(&pending);
    if (!pipe_was_pending && sigismember(&pending, SIGPIPE)) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return o;
}

static const char *const exec_paths[] = {"cwd", "code_dir", NULL};

const tw_target_ops tw__target_exec = {
    .kind = "exec",
    .transport = TW_TRANSPORT_EXEC,
    .policy = {.timeout_ms = 30000, .concurrency = 1, .path_settings = exec_paths},
    .configure = tw__exec_configure,
    .release = tw__exec_release,
    .render = tw__render_line,
    .deliver_local = deliver,
};
