/*
 * Helpers of tests/test_kill9.sh.
 *
 *   ckpt_step PLAN CHECKPOINT
 *       Opens a training plan, loads the checkpoint into a fresh context and
 *       prints its step count ("opt:step") on stdout (public API only).
 *       Exit status 0; 1 and one line "ckpt_step: error: ..." when the plan
 *       or the checkpoint does not load (a damaged checkpoint included).
 *
 *   ckpt_step --kill-in-write DELAY_US CHECKPOINT -- COMMAND [ARG...]
 *       Runs COMMAND (a path: no PATH search) and sends it SIGKILL DELAY_US
 *       microseconds after it creates CHECKPOINT's temp file
 *       "CHECKPOINT.tmp.<pid>" (runtime/oc_file.h: oc_file_write_atomic),
 *       seen through inotify, so that the kill lands during the checkpoint
 *       write however fast the file system is. The exit status is
 *       COMMAND's, as a shell reports it (128 + the signal number when
 *       killed: 137 for SIGKILL).
 *
 *   Exit status 2 on bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "onnxc/onnxc.h"

static int print_step(const char *plan_path, const char *ckpt_path) {
  oc_plan_t *plan = NULL;
  oc_context_t *ctx = NULL;
  int64_t steps = -1;
  oc_status_t s = oc_plan_open_file(plan_path, NULL, &plan);
  if (!s) s = oc_context_create(plan, NULL, &ctx);
  if (!s) s = oc_context_load_checkpoint(ctx, ckpt_path);
  if (!s) s = oc_context_step_count(ctx, &steps);
  oc_context_release(ctx);
  oc_plan_release(plan);
  if (s) {
    fprintf(stderr, "ckpt_step: error: %s\n", oc_status_message(s));
    oc_status_free(s);
    return 1;
  }
  printf("%" PRId64 "\n", steps);
  return 0;
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return 1e6 * (double)ts.tv_sec + 1e-3 * (double)ts.tv_nsec;
}

static int kill_in_write(long delay_us, const char *ckpt, char **cmd) {
  /* Watch the checkpoint's folder before the command starts. */
  char *dir = strdup(ckpt);
  if (!dir) return 2;
  char *slash = strrchr(dir, '/');
  const char *base = strrchr(ckpt, '/') ? strrchr(ckpt, '/') + 1 : ckpt;
  if (slash == dir) dir[1] = '\0';
  else if (slash) *slash = '\0';
  else strcpy(dir, ".");
  int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (fd < 0 || inotify_add_watch(fd, dir, IN_CREATE) < 0) {
    fprintf(stderr, "ckpt_step: error: inotify on %s: %s\n", dir, strerror(errno));
    free(dir);
    return 2;
  }
  free(dir);
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "ckpt_step: error: fork: %s\n", strerror(errno));
    return 2;
  }
  if (pid == 0) {
    execv(cmd[0], cmd);
    fprintf(stderr, "ckpt_step: error: cannot run %s: %s\n", cmd[0], strerror(errno));
    _exit(127);
  }
  char want[4096];
  snprintf(want, sizeof want, "%s.tmp.%ld", base, (long)pid);
  int st = 0, done = 0;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, 5);
    if (r > 0) {
      _Alignas(struct inotify_event) char buf[8192];
      ssize_t n = read(fd, buf, sizeof buf);
      int seen = 0;
      for (ssize_t off = 0; n > 0 && off < n;) {
        const struct inotify_event *ev = (const struct inotify_event *)(buf + off);
        if (ev->len && strcmp(ev->name, want) == 0) seen = 1;
        off += (ssize_t)(sizeof *ev + ev->len);
      }
      if (seen) {
        double until = now_us() + (double)delay_us;
        while (now_us() < until) {
        }
        kill(pid, SIGKILL);
        break;
      }
    }
    /* The command ended before writing (the watch was set before it
     * started, so no creation can be missed). */
    if (waitpid(pid, &st, WNOHANG) == pid) {
      done = 1;
      break;
    }
  }
  close(fd);
  if (!done && waitpid(pid, &st, 0) != pid) return 2;
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 2;
}

int main(int argc, char **argv) {
  if (argc >= 6 && strcmp(argv[1], "--kill-in-write") == 0 && strcmp(argv[4], "--") == 0) {
    char *end;
    long delay = strtol(argv[2], &end, 10);
    if (*end || end == argv[2] || delay < 0) return 2;
    return kill_in_write(delay, argv[3], argv + 5);
  }
  if (argc != 3 || argv[1][0] == '-') {
    fprintf(stderr,
            "usage: ckpt_step PLAN CHECKPOINT\n"
            "       ckpt_step --kill-in-write DELAY_US CHECKPOINT -- COMMAND [ARG...]\n");
    return 2;
  }
  return print_step(argv[1], argv[2]);
}
