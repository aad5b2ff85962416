#!/bin/sh
# Regenerates the EK profile test certificates (run here; needs openssl 3). Keys are thrown
# away: the tests only check profiles and signatures. See README.md.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/ext.cnf" <<'CNF'
[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
# openssl drops a field name's first "N." (for repeated fields): hence the "0.".
[tpm_dn]
0.2.23.133.2.1 = id:00001014
0.2.23.133.2.2 = swtpm
0.2.23.133.2.3 = id:20191023
[partial_dn]
0.2.23.133.2.1 = id:00001014
0.2.23.133.2.2 = swtpm
[ek]
basicConstraints = critical,CA:FALSE
keyUsage = critical,keyEncipherment
extendedKeyUsage = 2.23.133.8.1
subjectAltName = critical,dirName:tpm_dn
[ek_eku_only]
keyUsage = critical,keyEncipherment
extendedKeyUsage = 2.23.133.8.1
[ek_san_only]
keyUsage = critical,keyEncipherment
subjectAltName = critical,dirName:tpm_dn
[ek_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,keyEncipherment
extendedKeyUsage = 2.23.133.8.1
subjectAltName = critical,dirName:tpm_dn
[ek_no_key_usage]
extendedKeyUsage = 2.23.133.8.1
subjectAltName = critical,dirName:tpm_dn
[ek_sign_only]
keyUsage = critical,digitalSignature
extendedKeyUsage = 2.23.133.8.1
subjectAltName = critical,dirName:tpm_dn
[tls_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:tpm.example
[ek_partial_san]
keyUsage = critical,keyEncipherment
subjectAltName = critical,dirName:partial_dn
CNF
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/root.key"
openssl req -new -key "$tmp/root.key" -subj "/CN=warrant test EK root" -out "$tmp/root.csr"
openssl x509 -req -in "$tmp/root.csr" -signkey "$tmp/root.key" -days 36500 -sha256 -extfile "$tmp/ext.cnf" \
    -extensions root -out root.pem
# issue NAME SECTION: an RSA-2048 certificate under the root.
issue() {
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/$1.key" 2>/dev/null
    openssl req -new -key "$tmp/$1.key" -subj "/CN=$1" -out "$tmp/$1.csr"
    openssl x509 -req -in "$tmp/$1.csr" -CA root.pem -CAkey "$tmp/root.key" -set_serial "0x$(openssl rand -hex 8)" \
        -days 36500 -sha256 -extfile "$tmp/ext.cnf" -extensions "$2" -out "$1.pem"
}
issue ek ek
issue ek-eku-only ek_eku_only
issue ek-san-only ek_san_only
issue ek-ca ek_ca
issue ek-no-key-usage ek_no_key_usage
issue ek-sign-only ek_sign_only
issue tls-server tls_server
issue ek-partial-san ek_partial_san
# aia.pem: self-signed, only its authorityInfoAccess is read (an OCSP entry and two caIssuers).
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/aia.key" -subj "/CN=aia" -days 36500 -sha256 \
    -addext "authorityInfoAccess=OCSP;URI:http://ocsp.example/,caIssuers;URI:http://ca.example/ek-ca.crt,caIssuers;URI:ldap://ca.example/ek-ca" \
    -out aia.pem 2>/dev/null
# ek-ecc.pem: the EK profile on a P-256 key, under its own root ek-ecc-root.pem (an ECC EK
# certificate, which authorities refuse: their credential challenge needs an RSA EK).
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/ek-ecc-root.key"
openssl req -new -key "$tmp/ek-ecc-root.key" -subj "/CN=warrant test ECC EK root" -out "$tmp/ek-ecc-root.csr"
openssl x509 -req -in "$tmp/ek-ecc-root.csr" -signkey "$tmp/ek-ecc-root.key" -days 36500 -sha256 \
    -extfile "$tmp/ext.cnf" -extensions root -out ek-ecc-root.pem
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/ek-ecc.key"
openssl req -new -key "$tmp/ek-ecc.key" -subj "/CN=ek-ecc" -out "$tmp/ek-ecc.csr"
openssl x509 -req -in "$tmp/ek-ecc.csr" -CA ek-ecc-root.pem -CAkey "$tmp/ek-ecc-root.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days 36500 -sha256 -extfile "$tmp/ext.cnf" -extensions ek -out ek-ecc.pem
