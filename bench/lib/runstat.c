/*
 * runstat: run a command and report what wait4(2) says about it, so the
 * benchmark measures any executable (a Node single executable, a shell
 * launcher, node itself) the same way, without preloading anything into it.
 *
 *   runstat OUT [--netns PATH] [--listen-tcp ADDR PORT NAME] CMD [ARG...]
 *
 * Writes "wall_ns user_us sys_us maxrss_kib" to OUT when CMD has exited, and
 * exits with CMD's status. Wall time runs from just before the fork to just
 * after wait4. --netns joins that network namespace first (so the socket below
 * lives there); --listen-tcp passes CMD one listening IPv4 TCP socket as fd 3
 * the way systemd's socket activation does (LISTEN_FDS=1, LISTEN_FDNAMES=NAME,
 * LISTEN_PID = CMD's pid), without waiting for a connection.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what) {
  perror(what);
  return 125;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: runstat OUT [--netns PATH] [--listen-tcp ADDR PORT NAME] CMD [ARG...]\n");
    return 125;
  }
  const char *out = argv[1];
  int i = 2, sock = -1;
  const char *fdname = NULL;
  if (i + 1 < argc && strcmp(argv[i], "--netns") == 0) {
    int fd = open(argv[i + 1], O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) return fail(argv[i + 1]);
    close(fd);
    i += 2;
  }
  if (i + 3 < argc && strcmp(argv[i], "--listen-tcp") == 0) {
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[i + 2])) };
    if (inet_pton(AF_INET, argv[i + 1], &sa.sin_addr) != 1) return fail("--listen-tcp address");
    int one = 1;
    sock = socket(AF_INET, SOCK_STREAM, 0);
    if (sock < 0 || setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(sock, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(sock, 16) < 0) return fail("--listen-tcp");
    if (sock != 3 && (dup2(sock, 3) < 0 || close(sock) < 0)) return fail("dup2");
    sock = 3;
    fdname = argv[i + 3];
    i += 4;
  }
  if (i >= argc) return 125;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) return fail("fork");
  if (pid == 0) {
    if (sock >= 0) {
      char buf[32];
      snprintf(buf, sizeof buf, "%d", (int)getpid());
      setenv("LISTEN_PID", buf, 1);
      setenv("LISTEN_FDS", "1", 1);
      setenv("LISTEN_FDNAMES", fdname, 1);
    }
    execvp(argv[i], argv + i);
    perror(argv[i]);
    _exit(127);
  }
  if (sock >= 0) close(sock);
  int st;
  struct rusage ru;
  if (wait4(pid, &st, 0, &ru) < 0) return fail("wait4");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  FILE *f = fopen(out, "w");
  if (!f) return fail(out);
  long long ns = (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
  fprintf(f, "%lld %lld %lld %ld\n", ns,
          (long long)ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec,
          (long long)ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec, ru.ru_maxrss);
  fclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
