/*
 * msg -- RFC 5322 message headers: where the header ends, its fields one
 * by one (folded lines kept together), unfolding, address lists (as IMAP's
 * ENVELOPE wants them) and RFC 2047 encoded words (decoded to UTF-8 with
 * iconv). Works on LF or CRLF text alike, never reads past len, and never
 * allocates more than a small multiple of its input.
 */
#ifndef MSG_H
#define MSG_H

#include <stddef.h>
#include <time.h>

struct buf;

/*
 * Length of the header block including the empty line that ends it (so
 * the body starts at that offset). A message without an empty line is
 * all header.
 */
size_t	msg_header_len(const char *m, size_t len);

struct msg_field {
	const char	*name;		/* field name (not NUL-terminated) */
	size_t		 namelen;
	const char	*value;		/* after ':' up to the last line end,
					   folding kept */
	size_t		 valuelen;
	const char	*start;		/* the whole field with its line ends */
	size_t		 len;
};

/*
 * Iterates the fields of the header block h (len bytes): start with
 * *pos = 0. Returns 1 and fills f, or 0 at the end. A line without a
 * colon is returned as a field with an empty name (so that copying all
 * fields reproduces the header byte for byte).
 */
int	msg_field_next(const char *h, size_t len, size_t *pos, struct msg_field *f);
/* First field named name (case-insensitive): 1 found, 0 not. */
int	msg_field_find(const char *h, size_t len, const char *name,
	    struct msg_field *f);
/* Appends value unfolded (line ends removed) and trimmed to out. 0 or -1. */
int	msg_unfold(const char *v, size_t len, struct buf *out);

/*
 * One item of an address list. A group is framed by an item with
 * group set and mailbox its name, and an item with group set and
 * mailbox NULL (the end). Strings are NUL-terminated copies or NULL.
 */
struct msg_addr {
	char	*name;		/* display name, quotes removed, encoded words
				   kept */
	char	*adl;		/* source route "@a,@b", or NULL */
	char	*mailbox;	/* local part */
	char	*host;		/* domain, or NULL */
	int	 group;
};
/*
 * Parses an address list (an unfolded or folded field value). Never
 * fails on syntax: what cannot be understood becomes a mailbox with
 * what was there. At most max items. 0, or -1 on ENOMEM. The caller
 * frees with msg_addr_free.
 */
int	msg_addr_parse(const char *v, size_t len, size_t max, struct msg_addr **r,
	    size_t *n_r);
void	msg_addr_free(struct msg_addr *, size_t n);

/*
 * Appends s with RFC 2047 encoded words decoded to UTF-8 (white space
 * between two encoded words dropped); words in unknown charsets or
 * malformed ones are kept as they are. 0, or -1 (buf over its maximum).
 */
int	msg_decode_2047(const char *s, size_t len, struct buf *out);

/*
 * Writes t as an RFC 5322 3.3 date-time in local time ("Sun, 22 Nov 2026
 * 04:05:00 +0100") into buf (len bytes: 32 is enough). Returns buf.
 */
char	*msg_date(char *buf, size_t len, time_t t);

#endif
