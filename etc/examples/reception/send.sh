#!/bin/sh
# send.sh -- seed 001's sender: test1.txt over LMTP with msmtp
cat "$(dirname "$0")/test1.txt" | msmtp -t -i -C "${MSMTPCONFIGFILE:-$(dirname "$0")/msmtprc}" --read-envelope-from
