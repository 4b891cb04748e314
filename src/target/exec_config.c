/* target/exec_config.c: the exec kind's settings, and the Python shim that makes a Lambda handler
 * runnable as a command.
 *
 *   command: [prog, arg...]        argv, no shell (a single string: one program, no arguments)
 *   env: {NAME: value}  cwd: DIR  region: REGION
 * or, as serverless.yml describes a function:
 *   handler: module.function  runtime: python3.x  code_dir: DIR  function_name: NAME  memory_size: MB */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "target/exec_int.h"
#include "target/kinds.h"

#define ARGS_MAX 256
#define ARG_MAX_LEN 8192

/* Runs module.function(event, context) with the event from stdin (JSON; the text itself when a
 * transformation made plain text, as Lambda would get a string); context mirrors Lambda's Python
 * context object. An exception prints its traceback (to the captured stderr) and exits 1: retried,
 * as Lambda retries failed asynchronous invocations. */
const char tw__exec_python_shim[] =
    "import importlib, json, os, sys, time, traceback\n"
    "e = os.environ\n"
    "sys.path.insert(0, e.get('LAMBDA_TASK_ROOT') or '.')\n"
    "class Context:\n"
    "    function_version = '$LATEST'\n"
    "    def __init__(self):\n"
    "        self.function_name = e['AWS_LAMBDA_FUNCTION_NAME']\n"
    "        self.memory_limit_in_mb = int(e['AWS_LAMBDA_FUNCTION_MEMORY_SIZE'])\n"
    "        self.aws_request_id = e['TW_REQUEST_ID']\n"
    "        self.invoked_function_arn = 'arn:aws:lambda:%s:%s:function:%s' % (\n"
    "            e.get('AWS_REGION', 'us-east-1'), e.get('TW_ACCOUNT_ID', '000000000000'), self.function_name)\n"
    "        self.log_group_name = '/aws/lambda/' + self.function_name\n"
    "        self.log_stream_name = time.strftime('%Y/%m/%d/[$LATEST]', time.gmtime()) + \\\n"
    "            self.aws_request_id.replace('-', '')\n"
    "        self._deadline_ms = int(e['TW_DEADLINE_MS'])\n"
    "    def get_remaining_time_in_millis(self):\n"
    "        return max(0, self._deadline_ms - int(time.time() * 1000))\n"
    "try:\n"
    "    fn = getattr(importlib.import_module(sys.argv[1]), sys.argv[2])\n"
    "    raw = sys.stdin.read()\n"
    "    try:\n"
    "        event = json.loads(raw)\n"
    "    except ValueError:\n"
    "        event = raw\n"
    "    fn(event, Context())\n"
    "except Exception:\n"
    "    traceback.print_exc()\n"
    "    sys.exit(1)\n";

void tw__exec_release(void *impl)
{
    tw_exec *x = impl;
    if (!x)
        return;
    for (size_t i = 0; i < x->argc; i++)
        if (x->argv[i] != tw__exec_python_shim)
            free(x->argv[i]);
    free(x->argv);
    for (size_t i = 0; i < x->nenv; i++) {
        free(x->env_names[i]);
        free(x->env_values[i]);
    }
    free(x->env_names);
    free(x->env_values);
    free(x->cwd);
    free(x->region);
    free(x->handler);
    free(x->module);
    free(x->function);
    free(x->code_dir);
    free(x->function_name);
    free(x);
}

static int env_name_ok(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static tw_status add_arg(tw_exec *x, const char *s, tw_error *err)
{
    if (strlen(s) > ARG_MAX_LEN)
        return tw__err(err, TW_ECONFIG, "command[%zu]: longer than %d bytes", x->argc, ARG_MAX_LEN);
    char *c = s == tw__exec_python_shim ? (char *)tw__exec_python_shim : strdup(s);
    if (!c)
        return tw__err(err, TW_ENOMEM, "out of memory");
    x->argv[x->argc++] = c;
    x->argv[x->argc] = NULL;
    return TW_OK;
}

static tw_status parse_command(tw_exec *x, const tw_json *cmd, tw_error *err)
{
    tw_json_type t = tw_json_typeof(cmd);
    size_t n = t == TW_JSON_ARRAY ? tw_json_size(cmd) : 1;
    if ((t != TW_JSON_ARRAY && t != TW_JSON_STRING) || n == 0)
        return tw__err(err, TW_ECONFIG, "command: must be a list of strings (program and arguments, no shell) "
                                        "or one program path");
    if (n > ARGS_MAX)
        return tw__err(err, TW_ECONFIG, "command: more than %d arguments", ARGS_MAX);
    if (!(x->argv = calloc(n + 1, sizeof *x->argv)))
        return tw__err(err, TW_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char tmp[64];
        const tw_json *a = t == TW_JSON_ARRAY ? tw_json_at(cmd, i) : cmd;
        const char *s = tw__scalar_text(a, tmp, sizeof tmp);
        if (!s)
            return tw__err(err, TW_ECONFIG, "command[%zu]: must be a string", i);
        if (i == 0 && !*s)
            return tw__err(err, TW_ECONFIG, "command: the program is empty");
        tw_status rc = add_arg(x, s, err);
        if (rc)
            return rc;
    }
    return TW_OK;
}

/* handler "dir/module.function" -> module "dir.module", function "function" (Lambda's syntax). */
static tw_status parse_handler(tw_exec *x, tw_error *err)
{
    const char *h = x->handler, *dot = strrchr(h, '.');
    int ok = dot && dot > h && dot[1] && h[0] != '/' && !strstr(h, "..");
    for (const char *p = h; ok && p < dot; p++)
        ok = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
             *p == '.' || *p == '/';
    if (ok)
        ok = env_name_ok(dot + 1);             /* a Python identifier (ASCII) */
    if (!ok)
        return tw__err(err, TW_ECONFIG, "handler: must be module.function (e.g. handler.create_table)");
    x->module = strndup(h, (size_t)(dot - h));
    x->function = strdup(dot + 1);
    if (!x->module || !x->function)
        return tw__err(err, TW_ENOMEM, "out of memory");
    for (char *p = x->module; *p; p++)
        if (*p == '/')
            *p = '.';
    return TW_OK;
}

static tw_status parse_memory(tw_exec *x, const tw_json *settings, tw_error *err)
{
    const tw_json *v = tw_json_get(settings, "memory_size");
    x->memory_size = 128;                      /* Lambda's default */
    if (!v || tw_json_typeof(v) == TW_JSON_NULL)
        return TW_OK;
    char tmp[64], *end;
    const char *s = tw_json_typeof(v) == TW_JSON_ARRAY || tw_json_typeof(v) == TW_JSON_OBJECT
                        ? NULL : tw__scalar_text(v, tmp, sizeof tmp);
    long m = s ? strtol(s, &end, 10) : 0;
    if (!s || *end || m < 128 || m > 10240)
        return tw__err(err, TW_ECONFIG, "memory_size: must be a number of MB from 128 to 10240");
    x->memory_size = m;
    return TW_OK;
}

/* "3.11": the version of the python3 on PATH, asked once per process (a serverless.yml is loaded
 * again on every reload); "" when there is none. */
static char python_version[16];
static pthread_once_t python_once = PTHREAD_ONCE_INIT;

static void ask_python(void)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    static char a0[] = "python3", a1[] = "-c", a2[] = "import sys; print('%d.%d' % sys.version_info[:2])";
    char *argv[] = {a0, a1, a2, NULL};
    extern char **environ;
    pid_t pid;
    int ok = posix_spawnp(&pid, "python3", &fa, NULL, argv, environ) == 0;
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    /* read to the end (closing early would kill it with SIGPIPE); keep the first bytes */
    char buf[sizeof python_version], sink[256];
    ssize_t n = 0, r;
    while (ok && (r = read(fds[0], n < (ssize_t)sizeof buf - 1 ? buf + n : sink,
                           n < (ssize_t)sizeof buf - 1 ? sizeof buf - 1 - (size_t)n : sizeof sink)) != 0) {
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0 && n < (ssize_t)sizeof buf - 1)
            n += r;
    }
    close(fds[0]);
    int status = 0;
    if (ok)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    if (ok && n > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        snprintf(python_version, sizeof python_version, "%s", buf);
    }
}

const char *tw__exec_python_version(void)
{
    pthread_once(&python_once, ask_python);
    return python_version;
}

static tw_status configure_handler(tw_exec *x, const char *runtime, tw_error *err)
{
    tw_status rc = parse_handler(x, err);
    if (rc)
        return rc;
    if (!x->code_dir && !(x->code_dir = strdup(x->cwd ? x->cwd : ".")))
        return tw__err(err, TW_ENOMEM, "out of memory");
    if (!x->cwd && !(x->cwd = strdup(x->code_dir)))
        return tw__err(err, TW_ENOMEM, "out of memory");
    if (!x->function_name && !(x->function_name = strdup(x->function)))
        return tw__err(err, TW_ENOMEM, "out of memory");
    /* python3.X runs on the python3 PATH has, whatever its version: the configuration loader says
     * so when the versions differ (tw__exec_python_version) */
    (void)runtime;
    if (!(x->argv = calloc(6, sizeof *x->argv)))
        return tw__err(err, TW_ENOMEM, "out of memory");
    if ((rc = add_arg(x, "python3", err)) || (rc = add_arg(x, "-c", err)) ||
        (rc = add_arg(x, tw__exec_python_shim, err)) || (rc = add_arg(x, x->module, err)))
        return rc;
    return add_arg(x, x->function, err);
}

tw_status tw__exec_configure(const tw_json *settings, void **impl, tw_error *err)
{
    static const char *const known[] = {"command", "env", "cwd", "handler", "runtime", "code_dir", "function_name", "memory_size", "region", NULL};
    if (tw__setting_known(settings, known, err))
        return err ? err->code : TW_ECONFIG;
    tw_exec *x = calloc(1, sizeof *x);
    char *runtime = NULL;
    const tw_json *env, *cmd = tw_json_get(settings, "command");
    if (!x)
        return tw__err(err, TW_ENOMEM, "out of memory");
    tw_status rc;
    if ((rc = tw__setting_str(settings, "cwd", 0, &x->cwd, err)) ||
        (rc = tw__setting_str(settings, "region", 0, &x->region, err)) ||
        (rc = tw__setting_str(settings, "handler", 0, &x->handler, err)) ||
        (rc = tw__setting_str(settings, "runtime", 0, &runtime, err)) ||
        (rc = tw__setting_str(settings, "code_dir", 0, &x->code_dir, err)) ||
        (rc = tw__setting_str(settings, "function_name", 0, &x->function_name, err)) ||
        (rc = parse_memory(x, settings, err)) || (rc = tw__setting_map(settings, "env", &env, err)))
        goto out;
    size_t n = tw_json_size(env);
    if (n && (!(x->env_names = calloc(n, sizeof *x->env_names)) || !(x->env_values = calloc(n, sizeof(char *))))) {
        rc = tw__err(err, TW_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char tmp[64];
        const char *name = tw_json_key(env, i, NULL);
        if (!env_name_ok(name)) {
            rc = tw__err(err, TW_ECONFIG, "env: \"%.64s\" is not a valid variable name", name);
            goto out;
        }
        x->env_names[i] = strdup(name);
        x->env_values[i] = strdup(tw__scalar_text(tw_json_at(env, i), tmp, sizeof tmp));
        x->nenv++;
        if (!x->env_names[i] || !x->env_values[i]) {
            rc = tw__err(err, TW_ENOMEM, "out of memory");
            goto out;
        }
    }
    int python = !runtime || strncmp(runtime, "python3", 7) == 0;
    if (cmd && tw_json_typeof(cmd) != TW_JSON_NULL)
        rc = parse_command(x, cmd, err);
    else if (!python)
        rc = tw__err(err, TW_ECONFIG, "runtime %.64s needs a command (only python3 handlers run without one)",
                     runtime);
    else if (x->handler)
        rc = configure_handler(x, runtime, err);
    else if (runtime)
        rc = tw__err(err, TW_ECONFIG, "handler: required with runtime %.64s (module.function)", runtime);
    else
        rc = tw__err(err, TW_ECONFIG, "command: required (a list: program and arguments), or handler: "
                                      "module.function for a Python function");
out:
    free(runtime);
    if (rc)
        tw__exec_release(x);
    else
        *impl = x;
    return rc;
}
