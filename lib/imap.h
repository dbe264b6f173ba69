/*
 * imap -- the IMAP4rev1 grammar that imapd and fetch share (RFC 3501
 * section 9): a tokenizer for commands and responses, sequence sets,
 * dates, string quoting, and the modified UTF-7 of mailbox names
 * (RFC 3501 section 5.1.3).
 *
 * Reading is the caller's job: a command or a response is assembled as
 * the bytes of the wire, with each literal kept as "{n}\r\n" followed by
 * its n bytes (imap_literal_marker tells, at the end of a line, whether
 * one follows and how long it is). imap_parse then turns the whole text
 * into a tree of arguments. It never reads past the end, bounds list
 * nesting, and never allocates more than a small multiple of the input.
 */
#ifndef IMAP_H
#define IMAP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct buf;

enum imap_type {
	IMAP_ATOM,	/* also flags (\Seen), numbers, sequence sets, NIL */
	IMAP_STRING,	/* quoted string (unescaped) */
	IMAP_LITERAL,	/* {n} literal (its bytes) */
	IMAP_LIST	/* ( ... ) */
};

struct imap_arg {
	enum imap_type	 type;
	char		*str;	/* NUL-terminated copy (not for lists); a
				   literal may hold NUL bytes: use len */
	size_t		 len;
	struct imap_arg	*list;	/* IMAP_LIST: its items */
	size_t		 nlist;
};

struct imap_args {
	struct imap_arg	*v;
	size_t		 n;
};

#define IMAP_MAX_DEPTH	16	/* default nesting limit of lists */

/*
 * Parses text (len bytes, no trailing CRLF) into args. Atoms may carry a
 * bracketed section with spaces and parentheses (BODY[HEADER.FIELDS (A
 * B)]<0.10>), as fetch attributes and response codes need. maxdepth
 * bounds list nesting (0: IMAP_MAX_DEPTH). Returns 0, or -1 with a short
 * reason in err (unbalanced parentheses, bad literal, too deep, 8-bit or
 * control characters in a quoted string, ENOMEM). The caller frees with
 * imap_args_free, also after an error.
 */
int	imap_parse(const char *text, size_t len, int maxdepth,
	    struct imap_args *args, char *err, size_t errlen);
void	imap_args_free(struct imap_args *);

/*
 * Looks at the end of a line just read (without its CRLF): when it ends
 * in a literal marker "{n}" or "{n+}" returns 1 and sets *n_r and
 * *nonsync_r; 0 when there is none; -1 when the marker is malformed or n
 * is larger than 2^32-1.
 */
int	imap_literal_marker(const char *line, size_t len, uint64_t *n_r,
	    int *nonsync_r);

/* Type tests: 1 when arg is an atom/string/literal (an "astring"). */
int	imap_arg_is_string(const struct imap_arg *);
/* 1 when arg is the atom NIL. */
int	imap_arg_is_nil(const struct imap_arg *);
/*
 * Parses a number (RFC 3501 number: 0..2^32-1, digits only). 0, or -1.
 */
int	imap_number(const char *s, uint32_t *r);
/* Same for 63-bit numbers (RFC 3501 number64-ish, sizes). */
int	imap_number64(const char *s, uint64_t *r);

/*
 * Sequence sets (RFC 3501 sequence-set): "1:5,7,9:*". '*' is stored as
 * UINT32_MAX and resolved by the caller with imap_seqset_resolve.
 */
struct imap_range {
	uint32_t	lo, hi;		/* lo <= hi after resolve */
};
struct imap_seqset {
	struct imap_range	*r;
	size_t			 n;
};
/* 0, or -1 (malformed, a zero, or more than maxranges ranges). */
int	imap_seqset_parse(const char *s, size_t maxranges, struct imap_seqset *);
/* Replaces '*' by max (the largest number in use; 0 when empty) and
 * orders each range. */
void	imap_seqset_resolve(struct imap_seqset *, uint32_t max);
/* 1 when n is in the set (after resolve). */
int	imap_seqset_has(const struct imap_seqset *, uint32_t n);
void	imap_seqset_free(struct imap_seqset *);
/* Writes the set as "1:3,5" from a sorted array of numbers; 0 or -1. */
int	imap_seqset_format(struct buf *, const uint32_t *v, size_t n);

/*
 * Dates. date: "1-Feb-1994" (SEARCH); date-time:
 * "01-Feb-1994 21:52:25 +0100" (APPEND, INTERNALDATE). Both 0 or -1;
 * the date is midnight UTC of that day, the date-time its instant.
 */
int	imap_parse_date(const char *s, time_t *r);
int	imap_parse_datetime(const char *s, time_t *r);
/* Formats t in local time as a date-time (with quotes): 0 or -1. */
int	imap_format_datetime(time_t t, char *out, size_t outlen);

/*
 * Appends s (len bytes) as an IMAP string: an atom-safe quoted string
 * when it can be one, else a literal "{n}\r\n...". NULL writes NIL.
 * 0, or -1 (buf over its maximum).
 */
int	imap_quote(struct buf *, const char *s, size_t len);
/* Same but an atom is written bare when it is a valid atom (astring). */
int	imap_astring(struct buf *, const char *s, size_t len);

/*
 * Modified UTF-7 (mailbox names). imap_utf7_decode turns it into UTF-8;
 * -1 on malformed input (bad base64, non-minimal or unterminated shift,
 * a printable ASCII character encoded, invalid UTF-16). imap_utf7_encode
 * turns UTF-8 into modified UTF-7; -1 on invalid UTF-8. Both append to
 * out (NUL-terminated as every buf).
 */
int	imap_utf7_decode(const char *s, struct buf *out);
int	imap_utf7_encode(const char *s, struct buf *out);
/* 1 when s is valid modified UTF-7. */
int	imap_utf7_valid(const char *s);

#endif
