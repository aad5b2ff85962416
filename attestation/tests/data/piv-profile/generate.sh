#!/bin/sh
# Regenerates the PIV profile test certificates (run here; needs openssl 3). Keys are thrown
# away: the tests only verify. See README.md.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
key() { openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/$1.key"; }
cat >"$tmp/ext.cnf" <<'CNF'
[root]
basicConstraints = critical,CA:TRUE
[f9]
basicConstraints = critical,CA:TRUE,pathlen:0
[f9_not_ca]
basicConstraints = critical,CA:FALSE
[f9_key_usage]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,digitalSignature
[f9_fido]
basicConstraints = critical,CA:TRUE,pathlen:0
1.3.6.1.4.1.45724.2.1.1 = DER:03:02:05:20
[slot]
1.3.6.1.4.1.41482.3.3 = DER:05:07:01
1.3.6.1.4.1.41482.3.7 = DER:02:04:00:BC:61:4E
1.3.6.1.4.1.41482.3.8 = DER:03:03
1.3.6.1.4.1.41482.3.9 = DER:01
[slot_no_serial]
1.3.6.1.4.1.41482.3.3 = DER:05:07:01
1.3.6.1.4.1.41482.3.8 = DER:03:03
[slot_ca]
basicConstraints = critical,CA:TRUE
1.3.6.1.4.1.41482.3.3 = DER:05:07:01
1.3.6.1.4.1.41482.3.7 = DER:02:04:00:BC:61:4E
1.3.6.1.4.1.41482.3.8 = DER:03:03
CNF
# issue NAME SUBJECT-CN ISSUER-KEY ISSUER-CERT SECTION
issue() {
    key "$1"
    openssl req -new -key "$tmp/$1.key" -subj "/CN=$2" -out "$tmp/$1.csr"
    openssl x509 -req -in "$tmp/$1.csr" -CA "$4" -CAkey "$tmp/$3.key" -set_serial "0x$(openssl rand -hex 8)" \
        -days 36500 -sha256 -extfile "$tmp/ext.cnf" -extensions "$5" -out "$1.pem"
}
key root
openssl req -new -key "$tmp/root.key" -subj "/CN=warrant test PIV profile root" -out "$tmp/root.csr"
openssl x509 -req -in "$tmp/root.csr" -signkey "$tmp/root.key" -days 36500 -sha256 -extfile "$tmp/ext.cnf" \
    -extensions root -out root.pem
# Certificates in f9 position that a pinned root could have issued but that are not the PIV
# attestation intermediate profile; each signs a well-formed slot certificate.
issue f9-not-ca "Yubico PIV Attestation" root root.pem f9_not_ca
issue f9-key-usage "Yubico PIV Attestation" root root.pem f9_key_usage
issue f9-wrong-cn "Yubico U2F EE Serial 1432534688" root root.pem f9
issue f9-fido "Yubico PIV Attestation" root root.pem f9_fido
for f9 in f9-not-ca f9-key-usage f9-wrong-cn f9-fido; do
    issue "slot-under-$f9" "YubiKey PIV Attestation 9a" "$f9" "$f9.pem" slot
done
# A conforming f9, a slot certificate without the serial extension (as YubiKey 4 writes
# them), and a slot certificate that claims to be a CA.
issue f9 "Yubico PIV Attestation" root root.pem f9
issue slot-no-serial "YubiKey PIV Attestation 9c" f9 f9.pem slot_no_serial
issue slot-ca "YubiKey PIV Attestation 9a" f9 f9.pem slot_ca
