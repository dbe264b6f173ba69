#!/bin/sh
# mkcerts.sh DIR [NAME...] -- a throwaway CA and server certificates with
# SAN localhost and 127.0.0.1 (python, msmtp, mutt, swaks check the IP SAN;
# fetchmail only DNS names). Extra NAMEs are added as DNS SANs. Writes
# ca.crt ca.key server.crt server.key (RSA 2048) ecdsa.crt ecdsa.key (P-256).
set -eu
d=$1; shift
mkdir -p "$d"
san="DNS:localhost,IP:127.0.0.1"
for n in "$@"; do san="$san,DNS:$n"; done
cd "$d"
umask 077
if [ ! -f ca.key ]; then
	openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt \
		-days 3650 -subj "/CN=courriel test CA" \
		-addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
fi
mk() { # name keyopts
	name=$1; shift
	openssl req -newkey "$@" -nodes -keyout "$name.key" -out "$name.csr" \
		-subj "/CN=localhost" 2>/dev/null
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' \
		"$san" > "$name.ext"
	openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
		-days 3650 -out "$name.crt" -extfile "$name.ext" 2>/dev/null
	rm -f "$name.csr" "$name.ext"
}
mk server rsa:2048
mk ecdsa ec -pkeyopt ec_paramgen_curve:P-256
chmod 644 ca.crt server.crt ecdsa.crt
chmod 600 ca.key server.key ecdsa.key
