// Package push sends Web Push notifications (RFC 8030, 8291, 8292) to the push services of
// browsers that subscribed: VAPID keys, the payload's encryption (webpush-go), a client
// that never reaches an internal host, and what a push service's answer means for the
// subscription (gone, retry later, too large).
package push

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Keys is a VAPID key pair (P-256), each base64url without padding: the public key as an
// uncompressed point (65 bytes), the private key as its scalar (32 bytes), as browsers'
// applicationServerKey and webpush-go take them.
type Keys struct {
	Public  string `json:"public_key"`
	Private string `json:"private_key"`
}

// GenerateKeys makes a new VAPID key pair.
func GenerateKeys() (Keys, error) {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return Keys{}, fmt.Errorf("push: generate keys: %w", err)
	}
	return Keys{
		Public:  base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()),
		Private: base64.RawURLEncoding.EncodeToString(k.Bytes()),
	}, nil
}

// decodeKey reads base64url with or without padding (keys are pasted from many tools).
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	return base64.RawURLEncoding.DecodeString(s)
}

// Validate checks that both keys decode and that the private key is the public key's.
func (k Keys) Validate() error {
	priv, err := decodeKey(k.Private)
	if err != nil {
		return errors.New("the VAPID private key is not base64url")
	}
	pub, err := decodeKey(k.Public)
	if err != nil {
		return errors.New("the VAPID public key is not base64url")
	}
	key, err := ecdh.P256().NewPrivateKey(priv)
	if err != nil {
		return errors.New("the VAPID private key is not a P-256 key")
	}
	if string(key.PublicKey().Bytes()) != string(pub) {
		return errors.New("the VAPID public key is not the private key's")
	}
	return nil
}

// normalized answers the keys in the unpadded form (what browsers get).
func (k Keys) normalized() Keys {
	return Keys{Public: strings.TrimRight(strings.TrimSpace(k.Public), "="), Private: strings.TrimRight(strings.TrimSpace(k.Private), "=")}
}

// KeysFile is where development keeps its generated pair, under the data directory.
const KeysFile = "vapid.json"

// LoadOrCreateKeys answers the pair kept in dir/vapid.json, making and keeping a new one
// (mode 0600) the first time: `make run` keeps the same keys across restarts, so the
// browsers' subscriptions stay valid.
func LoadOrCreateKeys(dir string) (Keys, error) {
	path := filepath.Join(dir, KeysFile)
	data, err := os.ReadFile(path)
	if err == nil {
		var k Keys
		if err := json.Unmarshal(data, &k); err != nil {
			return Keys{}, fmt.Errorf("push: %s: %w", path, err)
		}
		if err := k.Validate(); err != nil {
			return Keys{}, fmt.Errorf("push: %s: %w", path, err)
		}
		return k.normalized(), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return Keys{}, fmt.Errorf("push: %w", err)
	}
	k, err := GenerateKeys()
	if err != nil {
		return Keys{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Keys{}, fmt.Errorf("push: %w", err)
	}
	data, _ = json.MarshalIndent(k, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return Keys{}, fmt.Errorf("push: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return Keys{}, fmt.Errorf("push: %w", err)
	}
	return k, nil
}
