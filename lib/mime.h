/*
 * mime -- the MIME structure of a message (RFC 2045, 2046): a tree of
 * parts with their content type, parameters and the offsets of header
 * and body, as IMAP's BODYSTRUCTURE and BODY[section] need. Offsets are
 * into the text given to mime_parse (imapd gives it the CRLF form, so
 * sizes are wire sizes). Nesting is bounded: past maxdepth a multipart
 * or message/rfc822 part is kept as a leaf.
 */
#ifndef MIME_H
#define MIME_H

#include <stddef.h>

struct mime_param {
	char	*name;		/* lowercased */
	char	*value;		/* quotes removed */
};

struct mime_part {
	char			*type;		/* lowercased; "text" by default */
	char			*subtype;	/* lowercased; "plain" by default */
	struct mime_param	*params;
	size_t			 nparams;
	char			*id;		/* Content-ID, or NULL */
	char			*description;	/* Content-Description, or NULL */
	char			*encoding;	/* Content-Transfer-Encoding, or NULL */
	char			*md5;		/* Content-MD5, or NULL */
	char			*disposition;	/* its value (lowercased), or NULL */
	struct mime_param	*dparams;
	size_t			 ndparams;
	char			*language;	/* Content-Language, or NULL */
	char			*location;	/* Content-Location, or NULL */
	size_t			 hdr_off, hdr_len;	/* header incl. empty line */
	size_t			 body_off, body_len;
	size_t			 lines;		/* lines of the body */
	/* multipart: its parts; message/rfc822: one child, the message */
	struct mime_part	*child;
	size_t			 nchild;
};

/*
 * Parses the message m (len bytes). 0 and a tree in *r (free it with
 * mime_free), or -1 on ENOMEM. Malformed MIME is never an error: it
 * parses as well as it can (a multipart without its boundary is one
 * part, a missing end delimiter ends at the end).
 */
int	mime_parse(const char *m, size_t len, int maxdepth, struct mime_part **r);
void	mime_free(struct mime_part *);

/* The value of a parameter (name lowercase), or NULL. */
const char *mime_param(const struct mime_part *, const char *name);

/*
 * Parses a Content-Type-like value "type/sub; a=b; c=\"d\"" (already
 * unfolded): type and subtype lowercased into the part, parameters
 * appended. Exposed for tests. 0 or -1 (ENOMEM).
 */
int	mime_parse_params(const char *v, struct mime_param **params,
	    size_t *nparams, char **first);

#endif
