/* Unit tests for the answer side of lib/dns (no resolver needed). */
#include <sys/socket.h>
#include <string.h>

#include "dns.h"
#include "t.h"

/* Builds MX rdata for pref and a dotted name ("" for the root). */
static size_t
mx(unsigned char *out, unsigned pref, const char *name)
{
	size_t o = 2;

	out[0] = (unsigned char)(pref >> 8);
	out[1] = (unsigned char)pref;
	while (*name != '\0') {
		size_t l = strcspn(name, ".");

		out[o++] = (unsigned char)l;
		memcpy(out + o, name, l);
		o += l;
		name += l;
		if (*name == '.')
			name++;
	}
	out[o++] = 0;
	return o;
}

static void
test_rdata(void)
{
	unsigned char b[300];
	char name[256];
	unsigned pref;
	size_t n;

	n = mx(b, 10, "MX1.Example.ORG");
	T_EQ_INT(dns_mx_rdata(b, n, &pref, name, sizeof(name)), 0, "MX rdata parses");
	T_EQ_INT(pref, 10, "preference");
	T_EQ_STR(name, "mx1.example.org", "name lowercased");
	n = mx(b, 0, "");
	T_EQ_INT(dns_mx_rdata(b, n, &pref, name, sizeof(name)), 0, "root name parses");
	T_EQ_STR(name, "", "root is empty");
	T_EQ_INT(dns_mx_rdata(b, 2, &pref, name, sizeof(name)), -1, "short rdata");
	n = mx(b, 5, "a.example");
	T_EQ_INT(dns_mx_rdata(b, n - 1, &pref, name, sizeof(name)), -1,
	    "missing root label");
	T_EQ_INT(dns_mx_rdata(b, n + 1, &pref, name, sizeof(name)), -1,
	    "trailing byte");
	b[2] = 0xc0;
	T_EQ_INT(dns_mx_rdata(b, n, &pref, name, sizeof(name)), -1,
	    "compression pointer refused");
	n = mx(b, 5, "bad host.example");
	T_EQ_INT(dns_mx_rdata(b, n, &pref, name, sizeof(name)), -1,
	    "space in a label refused");
	n = mx(b, 5, "a\n.example");
	T_EQ_INT(dns_mx_rdata(b, n, &pref, name, sizeof(name)), -1,
	    "newline in a label refused");
	n = mx(b, 5, "-a.example");
	T_EQ_INT(dns_mx_rdata(b, n, &pref, name, sizeof(name)), -1,
	    "leading hyphen refused");
	n = mx(b, 5, "averyveryverylonglabelname.example");
	T_EQ_INT(dns_mx_rdata(b, n, &pref, name, 10), -1, "name too long for buffer");
}

static void
test_answer(void)
{
	unsigned char b[8][300];
	const unsigned char *rd[8];
	size_t len[8], i;
	struct dns_mx m;
	char err[256];
	int seen_b_first = 0, seen_c_first = 0, run;

	len[0] = mx(b[0], 20, "c.example");
	len[1] = mx(b[1], 10, "b.example");
	len[2] = mx(b[2], 5, "a.example");
	len[3] = mx(b[3], 20, "b.example");	/* duplicate, worse */
	len[4] = mx(b[4], 10, "c.example");	/* duplicate, better */
	for (i = 0; i < 5; i++)
		rd[i] = b[i];
	T_EQ_INT(dns_mx_answer(&m, rd, len, 5, 0, err, sizeof(err)), DNS_OK,
	    "MX answer");
	T_EQ_INT(m.nhosts, 3, "duplicates dropped");
	T_EQ_STR(m.hosts[0].name, "a.example", "lowest preference first");
	T_EQ_INT(m.hosts[1].pref, 10, "ties kept at their preference");
	T_EQ_INT(m.hosts[2].pref, 10, "a duplicate keeps its best preference");
	for (run = 0; run < 64; run++) {
		dns_mx_answer(&m, rd, len, 5, 0, err, sizeof(err));
		if (strcmp(m.hosts[1].name, "b.example") == 0)
			seen_b_first = 1;
		else
			seen_c_first = 1;
	}
	T_OK(seen_b_first && seen_c_first, "equal preferences are shuffled");
	T_EQ_INT(dns_mx_answer(&m, rd, len, 5, 2, err, sizeof(err)), DNS_OK,
	    "bounded answer");
	T_EQ_INT(m.nhosts, 2, "at most max_hosts kept");
	T_EQ_STR(m.hosts[0].name, "a.example", "the best kept when bounded");

	len[5] = mx(b[5], 0, "");
	rd[5] = b[5];
	T_EQ_INT(dns_mx_answer(&m, rd + 5, len + 5, 1, 0, err, sizeof(err)),
	    DNS_PERM, "null MX is permanent");
	T_OK(strstr(err, "7505") != NULL, "null MX says why: %s", err);

	len[6] = 1;
	rd[6] = b[6];
	T_EQ_INT(dns_mx_answer(&m, rd + 6, len + 6, 1, 0, err, sizeof(err)),
	    DNS_PERM, "only malformed records: permanent");
	len[7] = mx(b[7], 1, "ok.example");
	rd[7] = b[7];
	T_EQ_INT(dns_mx_answer(&m, rd + 6, len + 6, 2, 0, err, sizeof(err)),
	    DNS_OK, "a malformed record is skipped");
	T_EQ_STR(m.hosts[0].name, "ok.example", "the good one kept");
}

static void
test_misc(void)
{
	unsigned char v4[4] = { 192, 0, 2, 1 }, v6[16] = { 0x20, 0x01, 0x0d, 0xb8 };
	char out[64];
	struct dns_host h[3];

	T_EQ_INT(dns_addr_rdata(AF_INET, v4, 4, out, sizeof(out)), 0, "A rdata");
	T_EQ_STR(out, "192.0.2.1", "A as text");
	T_EQ_INT(dns_addr_rdata(AF_INET6, v6, 16, out, sizeof(out)), 0, "AAAA rdata");
	T_EQ_STR(out, "2001:db8::", "AAAA as text");
	T_EQ_INT(dns_addr_rdata(AF_INET, v4, 3, out, sizeof(out)), -1,
	    "short A refused");
	T_OK(dns_name_valid("mx.example.org"), "valid name");
	T_OK(!dns_name_valid("mx..example.org"), "empty label");
	T_OK(!dns_name_valid(""), "empty name");
	T_OK(!dns_name_valid("a b.example"), "space");
	T_OK(!dns_name_valid("0123456789012345678901234567890123456789012345678901234567890123.x"),
	    "label over 63");
	memset(h, 0, sizeof(h));
	h[0].pref = 30;
	h[1].pref = 10;
	h[2].pref = 20;
	dns_mx_order(h, 3);
	T_OK(h[0].pref == 10 && h[1].pref == 20 && h[2].pref == 30,
	    "dns_mx_order sorts");
}

int
main(void)
{
	test_rdata();
	test_answer();
	test_misc();
	return t_done();
}
