/*
 * resp.c -- parsers of what IMAP and POP3 servers answer, over text only
 * (no I/O), so that a fuzzer and a test can feed them strings. Everything
 * the server sends is hostile: every number is range-checked, every
 * length bounded, and anything unexpected is "malformed" (-1), never a
 * guess.
 */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fetch.h"

/* Largest literal we accept: a message bigger than this is refused. */
#define LITERAL_MAX	(1ULL << 31)

static int
parse_ulong(const char **sp, unsigned long *r)
{
	const char *s = *sp;
	unsigned long v = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	while (isdigit((unsigned char)*s)) {
		if (v > (ULONG_MAX - 9) / 10 || v > 0xffffffffUL)
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
		s++;
	}
	if (v > 0xffffffffUL)
		return -1;
	*r = v;
	*sp = s;
	return 0;
}

static int
parse_ull(const char **sp, unsigned long long *r)
{
	const char *s = *sp;
	unsigned long long v = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	while (isdigit((unsigned char)*s)) {
		if (v > LITERAL_MAX)
			return -1;
		v = v * 10 + (unsigned long long)(*s - '0');
		s++;
	}
	*r = v;
	*sp = s;
	return 0;
}

static enum imap_status
status_word(const char *s, size_t n)
{
	if (n == 2 && strncasecmp(s, "OK", 2) == 0)
		return ST_OK;
	if (n == 2 && strncasecmp(s, "NO", 2) == 0)
		return ST_NO;
	if (n == 3 && strncasecmp(s, "BAD", 3) == 0)
		return ST_BAD;
	if (n == 3 && strncasecmp(s, "BYE", 3) == 0)
		return ST_BYE;
	if (n == 7 && strncasecmp(s, "PREAUTH", 7) == 0)
		return ST_PREAUTH;
	return ST_NONE;
}

/* "[CODE arg]" after a status word. */
static void
resp_code(const char *s, struct imap_resp *r)
{
	size_t n;
	const char *end;

	if (*s != '[')
		return;
	s++;
	n = strcspn(s, " ]");
	if (n == 0 || n >= sizeof(r->code))
		return;
	end = strchr(s, ']');
	if (end == NULL)
		return;
	memcpy(r->code, s, n);
	r->code[n] = '\0';
	s += n;
	if (*s == ' ')
		s++;
	if (s <= end) {
		r->code_arg = s;
		r->code_arglen = (size_t)(end - s);
	}
}

int
imap_resp_parse(const char *line, struct imap_resp *r)
{
	const char *s = line;
	size_t n;

	memset(r, 0, sizeof(*r));
	r->text = "";
	if (s[0] == '+' && (s[1] == ' ' || s[1] == '\0')) {
		r->type = IMAP_CONT;
		r->text = s[1] ? s + 2 : s + 1;
		return 0;
	}
	if (s[0] == '*' && s[1] == ' ') {
		r->type = IMAP_UNTAGGED;
		s += 2;
		if (isdigit((unsigned char)*s)) {
			if (parse_ulong(&s, &r->num) == -1 || *s != ' ')
				return -1;
			s++;
			n = strcspn(s, " ");
			if (n == 0 || n >= sizeof(r->word))
				return -1;
			memcpy(r->word, s, n);
			r->word[n] = '\0';
			s += n;
			if (*s == ' ')
				s++;
			r->text = s;
			return 0;
		}
	} else {
		/* tag: astring chars, no '+' (RFC 3501 9) */
		n = strcspn(s, " ");
		if (n == 0 || n >= sizeof(r->tag) || s[n] != ' ')
			return -1;
		if (strpbrk(s, "(){%*\"\\") != NULL && strpbrk(s, "(){%*\"\\") < s + n)
			return -1;
		memcpy(r->tag, s, n);
		r->tag[n] = '\0';
		r->type = IMAP_TAGGED;
		s += n + 1;
	}
	n = strcspn(s, " ");
	if (n == 0)
		return -1;
	r->status = status_word(s, n);
	if (r->status == ST_NONE) {
		if (r->type == IMAP_TAGGED || n >= sizeof(r->word))
			return -1;
		memcpy(r->word, s, n);
		r->word[n] = '\0';
	}
	s += n;
	if (*s == ' ')
		s++;
	r->text = s;
	if (r->status != ST_NONE)
		resp_code(s, r);
	return 0;
}

/*
 * The FETCH attribute list. The scanner keeps its place (paren depth,
 * whether a name or a value comes next) across the literals that end a
 * line, so a literal inside ENVELOPE or an X- attribute is skipped like
 * the body literal is read.
 */
static int
fetch_scan(struct imap_fetch *f, const char *s)
{
	size_t n;

	f->literal = 0;
	f->literal_body = 0;
	for (;;) {
		while (*s == ' ')
			s++;
		if (*s == '\0') {
			/* a list may not end without its ')' */
			return -1;
		}
		if (*s == ')') {
			if (f->depth <= 0)
				return -1;
			f->depth--;
			s++;
			if (f->depth == 0)
				return *s == '\0' ? 0 : -1;
			if (f->depth == 1)
				f->want = 0;
			continue;
		}
		if (f->depth == 1 && f->want == 0) {
			/* attribute name, with a [section] and <partial> */
			const char *start = s;
			int br = 0;

			while (*s != '\0' && (br || (*s != ' ' && *s != ')'))) {
				if (*s == '[')
					br++;
				else if (*s == ']' && br > 0)
					br--;
				s++;
			}
			n = (size_t)(s - start);
			if (n == 0 || n >= sizeof(f->name) || br)
				return -1;
			memcpy(f->name, start, n);
			f->name[n] = '\0';
			if (*s != ' ')
				return -1;
			f->want = 1;
			continue;
		}
		/* a value (depth 1), or anything inside a nested list */
		if (*s == '(') {
			if (f->depth >= 32)
				return -1;
			f->depth++;
			s++;
			continue;
		}
		if (*s == '"') {
			const char *start = ++s;

			while (*s != '"') {
				if (*s == '\0')
					return -1;
				if (*s == '\\') {
					s++;
					if (*s != '\\' && *s != '"')
						return -1;
				}
				s++;
			}
			if (f->depth == 1 && f->want == 1 &&
			    (str_prefix(f->name, "BODY[") ||
			    strcasecmp(f->name, "RFC822") == 0 ||
			    str_prefix(f->name, "BINARY["))) {
				f->qbody = start;
				f->qbodylen = (size_t)(s - start);
				f->has_body = 1;
			}
			s++;
			if (f->depth == 1)
				f->want = 0;
			continue;
		}
		if (*s == '{' || (*s == '~' && s[1] == '{')) {
			unsigned long long len;

			s += *s == '~' ? 2 : 1;
			if (parse_ull(&s, &len) == -1)
				return -1;
			if (*s == '+')	/* LITERAL+ form, harmless */
				s++;
			if (s[0] != '}' || s[1] != '\0')
				return -1;
			f->literal = len;
			if (f->depth == 1 && f->want == 1) {
				if (str_prefix(f->name, "BODY[") ||
				    strcasecmp(f->name, "RFC822") == 0 ||
				    str_prefix(f->name, "BINARY[")) {
					f->literal_body = 1;
					f->has_body = 1;
				}
				f->want = 0;
			}
			return 1;
		}
		/* an atom or a number */
		{
			const char *start = s;

			while (*s != '\0' && *s != ' ' && *s != ')' &&
			    *s != '(' && *s != '"' && *s != '{')
				s++;
			n = (size_t)(s - start);
			if (n == 0)
				return -1;
			if (f->depth == 1 && f->want == 1) {
				if (strcasecmp(f->name, "UID") == 0) {
					const char *p = start;

					if (parse_ulong(&p, &f->uid) == -1 ||
					    p != s || f->uid == 0)
						return -1;
				} else if (strcasecmp(f->name, "RFC822.SIZE") == 0) {
					const char *p = start;

					if (parse_ull(&p, &f->size) == -1 || p != s)
						return -1;
				} else if (n == 3 &&
				    strncasecmp(start, "NIL", 3) == 0 &&
				    (str_prefix(f->name, "BODY[") ||
				    strcasecmp(f->name, "RFC822") == 0))
					f->body_nil = 1;
				f->want = 0;
			}
		}
	}
}

int
imap_fetch_begin(struct imap_fetch *f, unsigned long seq, const char *rest)
{
	memset(f, 0, sizeof(*f));
	f->seq = seq;
	while (*rest == ' ')
		rest++;
	if (*rest != '(')
		return -1;
	f->depth = 1;
	f->want = 0;
	return fetch_scan(f, rest + 1);
}

int
imap_fetch_continue(struct imap_fetch *f, const char *line)
{
	if (f->depth <= 0)
		return -1;
	f->qbody = NULL;
	return fetch_scan(f, line);
}

int
imap_capa_has(const char *caps, const char *cap)
{
	size_t n = strlen(cap);
	const char *s = caps;

	while (*s != '\0') {
		size_t w;

		while (*s == ' ')
			s++;
		w = strcspn(s, " ]");
		if (w == n && strncasecmp(s, cap, n) == 0)
			return 1;
		s += w;
		if (*s == ']')
			break;
	}
	return 0;
}

int
pop3_status(const char *line)
{
	if (strncmp(line, "+OK", 3) == 0 && (line[3] == '\0' || line[3] == ' '))
		return 1;
	if (strncmp(line, "-ERR", 4) == 0 && (line[4] == '\0' || line[4] == ' '))
		return 0;
	return -1;
}

int
pop3_uidl_line(const char *line, unsigned long *num, const char **uidl,
    size_t *uidllen)
{
	const char *s = line, *u;

	if (parse_ulong(&s, num) == -1 || *num == 0 || *s != ' ')
		return -1;
	while (*s == ' ')
		s++;
	u = s;
	/* RFC 1939 7: 1 to 70 characters in 0x21-0x7E */
	while (*s > 0x20 && *s < 0x7f)
		s++;
	if (s == u || s - u > 70)
		return -1;
	/* trailing blanks are tolerated, nothing else */
	if (*s != '\0' && strspn(s, " ") != strlen(s))
		return -1;
	*uidl = u;
	*uidllen = (size_t)(s - u);
	return 0;
}

int
pop3_list_line(const char *line, unsigned long *num, unsigned long long *octets)
{
	const char *s = line;

	if (parse_ulong(&s, num) == -1 || *num == 0 || *s != ' ')
		return -1;
	while (*s == ' ')
		s++;
	if (parse_ull(&s, octets) == -1)
		return -1;
	return 0;
}
