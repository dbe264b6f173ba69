/*
 * replay_main -- a main() for a libFuzzer target built without libFuzzer:
 * it feeds every file named on the command line (directories are walked
 * one level deep) to LLVMFuzzerTestOneInput once. make check links each
 * target with it to replay the seed corpus and the regressions, so a
 * crash that fuzzing found once stays fixed (tests/integration/
 * fuzz_replay.sh). Prints the number of inputs run; a crash is a crash.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***) __attribute__((weak));

static long	nrun;

static int
run_file(const char *path)
{
	FILE	*fp;
	uint8_t	*data;
	long	 len;
	size_t	 n;

	if ((fp = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(fp, 0, SEEK_END) == -1 || (len = ftell(fp)) < 0 ||
	    fseek(fp, 0, SEEK_SET) == -1) {
		fprintf(stderr, "%s: cannot size\n", path);
		fclose(fp);
		return -1;
	}
	/* malloc(len) exactly, so ASan sees reads past the input. */
	if ((data = malloc(len ? (size_t)len : 1)) == NULL) {
		fclose(fp);
		return -1;
	}
	n = fread(data, 1, (size_t)len, fp);
	fclose(fp);
	LLVMFuzzerTestOneInput(data, n);
	free(data);
	nrun++;
	return 0;
}

static int
run_dir(const char *dir)
{
	struct dirent	**names;
	struct stat	  st;
	char		  path[4096];
	int		  i, n, rc = 0;

	if ((n = scandir(dir, &names, NULL, alphasort)) == -1) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.' &&
		    snprintf(path, sizeof(path), "%s/%s", dir,
		    names[i]->d_name) < (int)sizeof(path) &&
		    stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    run_file(path) == -1)
			rc = -1;
		free(names[i]);
	}
	free(names);
	return rc;
}

int
main(int argc, char **argv)
{
	struct stat	st;
	int		i, rc = 0;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == -1)
			continue;	/* a target may have no regressions yet */
		if (S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i]))
			rc = 1;
	}
	printf("%ld inputs\n", nrun);
	return rc;
}
