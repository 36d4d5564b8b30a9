#!/usr/bin/env bash
# Demo certificates for deploy/compose: a CA and one certificate the three
# NATS nodes present to clients and to each other on cluster routes (server
# and client auth; SANs nats-1..3, localhost, 127.0.0.1). Not for production:
# the keys are left readable (0644) so the containers' unprivileged user can
# read the bind mount. Usage: gen-certs.sh DIR
set -euo pipefail
dir=${1:?usage: gen-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
[[ -s ca.pem && -s server.pem && -s server-key.pem ]] && exit 0
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
  -subj "/O=Sinew demo/CN=Sinew demo CA" -keyout ca-key.pem -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/O=Sinew demo/CN=nats" -keyout server-key.pem -out server.csr 2>/dev/null
cat > server.ext <<EXT
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:nats-1,DNS:nats-2,DNS:nats-3,DNS:localhost,IP:127.0.0.1
EXT
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 825 \
  -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl
chmod 0644 ca.pem server.pem server-key.pem
chmod 0600 ca-key.pem
echo "certificates in $dir"
