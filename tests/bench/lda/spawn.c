/*
 * spawn -- the benchmark's driver: runs a delivery program once per
 * message, one after the other, each with a corpus file on stdin, and
 * prints "messages/s peak-RSS-KB failures" on stdout.
 *
 *   spawn N CORPUS_DIR K program [args...]
 *
 * Message i is CORPUS_DIR/<i mod K>. Children get stdout and stderr on
 * /dev/null; an exit status other than 0 counts as a failure. The peak
 * RSS is the largest of any child (getrusage RUSAGE_CHILDREN).
 */
#include <sys/resource.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int
main(int argc, char *argv[])
{
	struct timespec	 t0, t1;
	struct rusage	 ru;
	char		 path[4096];
	long		 n, k, i, failures = 0;
	int		 fd, null, status;
	pid_t		 pid;
	double		 secs;

	if (argc < 5) {
		fprintf(stderr, "usage: spawn N corpus_dir K program [args]\n");
		return 64;
	}
	n = atol(argv[1]);
	k = atol(argv[3]);
	if (n <= 0 || k <= 0)
		return 64;
	if ((null = open("/dev/null", O_WRONLY)) == -1)
		return 71;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%ld", argv[2], i % k);
		if ((fd = open(path, O_RDONLY)) == -1) {
			perror(path);
			return 66;
		}
		if ((pid = fork()) == -1) {
			perror("fork");
			return 71;
		}
		if (pid == 0) {
			dup2(fd, 0);
			dup2(null, 1);
			dup2(null, 2);
			execv(argv[4], argv + 4);
			_exit(127);
		}
		close(fd);
		if (waitpid(pid, &status, 0) == -1 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			failures++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	getrusage(RUSAGE_CHILDREN, &ru);
	printf("%.1f %ld %ld\n", (double)n / secs, ru.ru_maxrss, failures);
	return 0;
}
