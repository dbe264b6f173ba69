/*
 * t.h -- the tiny unit test harness. Each check prints one TAP-like line
 * that tests/run counts; main() returns t_done().
 */
#ifndef T_H
#define T_H

#include <stdio.h>
#include <string.h>

static int t_failed;

#define T_OK(cond, ...) do {						\
	if (cond) {							\
		printf("ok - ");					\
	} else {							\
		printf("not ok - %s:%d: ", __FILE__, __LINE__);	\
		t_failed++;						\
	}								\
	printf(__VA_ARGS__);						\
	printf("\n");							\
} while (0)

#define T_EQ_INT(a, b, what) do {					\
	long long t_a_ = (long long)(a), t_b_ = (long long)(b);		\
	T_OK(t_a_ == t_b_, "%s (got %lld, want %lld)", what, t_a_, t_b_); \
} while (0)

#define T_EQ_STR(a, b, what) do {					\
	const char *t_a_ = (a), *t_b_ = (b);				\
	T_OK(t_a_ != NULL && t_b_ != NULL && strcmp(t_a_, t_b_) == 0,	\
	    "%s (got \"%s\", want \"%s\")", what,			\
	    t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)");		\
} while (0)

static inline int
t_done(void)
{
	return t_failed ? 1 : 0;
}

#endif
