// Package smart is SMART Backend Services (the client_credentials grant
// with a signed JWT assertion, as Epic's backend apps use it): signing
// keys (RS384, ES384) published as a JWKS with kid, assertions with
// exp ≤ 5 minutes and a unique jti, a token source that caches the
// access token by expires_in and renews it before expiry, and the
// server-side check of an assertion against a client's JWKS (epicsim).
// VerifyJWS also checks OpenID Connect ID tokens (RS256, ES256) for the
// console's sign-in. Standard library crypto only: each algorithm is a
// few lines.
package smart

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
)

// Algorithms SMART Backend Services requires servers to support.
const (
	RS384 = "RS384"
	ES384 = "ES384"
)

// Algorithms OpenID Connect providers sign ID tokens with (RS256 is the
// one every provider must offer); VerifyJWS accepts them when asked.
const (
	RS256 = "RS256"
	ES256 = "ES256"
)

// MaxAssertionLifetime is the longest exp - now an assertion may have.
const MaxAssertionLifetime = 5 * time.Minute

var b64 = base64.RawURLEncoding

// Key is a signing key with its kid.
type Key struct {
	Alg string
	Kid string
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
}

// GenerateKey makes a new key for alg (RS384: RSA 2048; ES384: P-384),
// its kid the thumbprint-like hash of the public key.
func GenerateKey(alg string) (*Key, error) {
	k := &Key{Alg: alg}
	var err error
	switch alg {
	case RS384:
		k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	case ES384:
		k.ec, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RS256:
		k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	case ES256:
		k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("smart: algorithm %q not supported (RS384, ES384, RS256, ES256)", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("smart: generate %s key: %w", alg, err)
	}
	k.Kid = k.defaultKid()
	return k, nil
}

// ParseKeyPEM reads a PKCS#8 (or PKCS#1 RSA / SEC 1 EC) private key; the
// algorithm follows the key type.
func ParseKeyPEM(b []byte, kid string) (*Key, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("smart: no PEM block in key")
	}
	var raw any
	var err error
	switch blk.Type {
	case "RSA PRIVATE KEY":
		raw, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		raw, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		raw, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("smart: parse key: %w", err)
	}
	k := &Key{}
	switch v := raw.(type) {
	case *rsa.PrivateKey:
		k.Alg, k.rsa = RS384, v
	case *ecdsa.PrivateKey:
		if v.Curve != elliptic.P384() {
			return nil, errors.New("smart: EC key must be P-384 for ES384")
		}
		k.Alg, k.ec = ES384, v
	default:
		return nil, errors.New("smart: key is neither RSA nor EC")
	}
	k.Kid = kid
	if k.Kid == "" {
		k.Kid = k.defaultKid()
	}
	return k, nil
}

// MarshalPEM is the key as PKCS#8 PEM.
func (k *Key) MarshalPEM() ([]byte, error) {
	var s crypto.Signer = k.rsa
	if k.ec != nil {
		s = k.ec
	}
	der, err := x509.MarshalPKCS8PrivateKey(s)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func (k *Key) defaultKid() string {
	j := k.JWK()
	b, _ := json.Marshal([]string{j.Kty, j.N, j.E, j.Crv, j.X, j.Y})
	h := sha512.Sum384(b)
	return hex.EncodeToString(h[:12])
}

// JWK is one public key of a JWKS.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWK is the key's public half.
func (k *Key) JWK() JWK {
	j := JWK{Kid: k.Kid, Alg: k.Alg, Use: "sig"}
	switch {
	case k.rsa != nil:
		j.Kty = "RSA"
		j.N = b64.EncodeToString(k.rsa.N.Bytes())
		j.E = b64.EncodeToString(big.NewInt(int64(k.rsa.E)).Bytes())
	case k.ec != nil:
		j.Kty, j.Crv = "EC", k.ec.Curve.Params().Name
		pt, _ := k.ec.PublicKey.Bytes() // 0x04 || X || Y
		if n := (len(pt) - 1) / 2; n > 0 {
			j.X = b64.EncodeToString(pt[1 : 1+n])
			j.Y = b64.EncodeToString(pt[1+n:])
		}
	}
	return j
}

// Set is the JWKS of keys (what Sinew serves for the Epic admin).
func Set(keys ...*Key) JWKS {
	s := JWKS{Keys: []JWK{}}
	for _, k := range keys {
		s.Keys = append(s.Keys, k.JWK())
	}
	return s
}

// Claims are an assertion's claims.
type Claims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Aud string `json:"aud"`
	Jti string `json:"jti"`
	Exp int64  `json:"exp"`
	Iat int64  `json:"iat,omitempty"`
	Nbf int64  `json:"nbf,omitempty"`
}

// NewJTI is a random jti (128 bits).
func NewJTI() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Assertion signs the client assertion for clientID at tokenURL, valid
// for lifetime (capped at MaxAssertionLifetime) from now.
func (k *Key) Assertion(clientID, tokenURL string, now time.Time, lifetime time.Duration) (string, Claims, error) {
	if lifetime <= 0 || lifetime > MaxAssertionLifetime {
		lifetime = MaxAssertionLifetime
	}
	c := Claims{Iss: clientID, Sub: clientID, Aud: tokenURL, Jti: NewJTI(), Iat: now.Unix(), Nbf: now.Unix(), Exp: now.Add(lifetime).Unix()}
	tok, err := k.Sign(c)
	return tok, c, err
}

// Sign encodes and signs any claims as a compact JWS.
func (k *Key) Sign(claims any) (string, error) {
	h, _ := json.Marshal(map[string]string{"alg": k.Alg, "kid": k.Kid, "typ": "JWT"})
	p, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	hash, size := algHash(k.Alg)
	sum := digest(hash, input)
	var sig []byte
	switch {
	case k.rsa != nil:
		sig, err = rsa.SignPKCS1v15(rand.Reader, k.rsa, hash, sum)
	case k.ec != nil:
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, k.ec, sum)
		if err == nil {
			sig = append(r.FillBytes(make([]byte, size)), s.FillBytes(make([]byte, size))...)
		}
	}
	if err != nil {
		return "", fmt.Errorf("smart: sign: %w", err)
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// Verification errors (the token endpoint answers invalid_client).
var (
	ErrMalformed  = errors.New("smart: assertion is not a compact JWS")
	ErrUnknownKid = errors.New("smart: no key with the assertion's kid in the client's JWKS")
	ErrAlg        = errors.New("smart: JWS algorithm not accepted here or not the key's")
	ErrSignature  = errors.New("smart: assertion signature does not verify")
)

// Verify checks token's signature against set and returns its claims
// (claims are not checked here: see the token endpoint). Only the SMART
// algorithms, RS384 and ES384, are accepted.
func Verify(token string, set JWKS) (Claims, error) {
	var c Claims
	pb, err := VerifyJWS(token, set, RS384, ES384)
	if err != nil {
		return c, err
	}
	if json.Unmarshal(pb, &c) != nil {
		return c, ErrMalformed
	}
	return c, nil
}

// VerifyJWS checks a compact JWS's signature against the key of set with
// its kid, the algorithm one of algs, and returns the payload's bytes
// (claims unchecked; their shape is the caller's, as an ID token's aud
// may be a list).
func VerifyJWS(token string, set JWKS, algs ...string) ([]byte, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, ErrMalformed
	}
	hb, err1 := b64.DecodeString(parts[0])
	pb, err2 := b64.DecodeString(parts[1])
	sig, err3 := b64.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, ErrMalformed
	}
	var h struct{ Alg, Kid string }
	if json.Unmarshal(hb, &h) != nil || !json.Valid(pb) {
		return nil, ErrMalformed
	}
	if !slices.Contains(algs, h.Alg) {
		return nil, ErrAlg
	}
	var key *JWK
	for i := range set.Keys {
		if set.Keys[i].Kid == h.Kid {
			key = &set.Keys[i]
		}
	}
	if key == nil {
		return nil, ErrUnknownKid
	}
	if key.Alg != "" && key.Alg != h.Alg {
		return nil, ErrAlg
	}
	hash, size := algHash(h.Alg)
	sum := digest(hash, parts[0]+"."+parts[1])
	switch {
	case (h.Alg == RS384 || h.Alg == RS256) && key.Kty == "RSA":
		n, _ := b64.DecodeString(key.N)
		e, _ := b64.DecodeString(key.E)
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.Sign() == 0 || pub.E == 0 || rsa.VerifyPKCS1v15(pub, hash, sum, sig) != nil {
			return nil, ErrSignature
		}
	case h.Alg == ES384 && key.Kty == "EC" && key.Crv == "P-384", h.Alg == ES256 && key.Kty == "EC" && key.Crv == "P-256":
		curve := elliptic.P384()
		if h.Alg == ES256 {
			curve = elliptic.P256()
		}
		x, _ := b64.DecodeString(key.X)
		y, _ := b64.DecodeString(key.Y)
		if len(sig) != 2*size || len(x) != size || len(y) != size {
			return nil, ErrSignature
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil || !ecdsa.Verify(pub, sum, new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])) {
			return nil, ErrSignature
		}
	default:
		return nil, ErrAlg
	}
	return pb, nil
}

// algHash is alg's hash and its EC coordinate size in bytes.
func algHash(alg string) (crypto.Hash, int) {
	if alg == RS256 || alg == ES256 {
		return crypto.SHA256, 32
	}
	return crypto.SHA384, 48
}

func digest(h crypto.Hash, input string) []byte {
	if h == crypto.SHA256 {
		s := sha256.Sum256([]byte(input))
		return s[:]
	}
	s := sha512.Sum384([]byte(input))
	return s[:]
}
