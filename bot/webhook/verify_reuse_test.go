package webhook

import (
	"fmt"
	"sync"
	"testing"
)

// Verify keeps keyed HMACs for reuse: a reused one must carry no state
// from its previous body, secrets that share a prefix or differ only in
// length must not share one, and more secrets than the cache holds must
// still verify. ("s" and "s\x00" would be one key: HMAC pads keys with
// zeros.)
func TestVerifyReusedMACs(t *testing.T) {
	secrets := [][]byte{[]byte("s"), []byte("s\x01"), []byte("s1"), []byte("")}
	for i := range 2 * maxMACPools {
		secrets = append(secrets, []byte(fmt.Sprintf("secret-%d", i)))
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 20 {
				for i, s := range secrets {
					body := []byte(fmt.Sprintf(`{"g":%d,"round":%d,"i":%d}`, g, round, i))
					if err := Verify(body, Sign(body, s), [][]byte{s}); err != nil {
						t.Errorf("secret %q, round %d: %v", s, round, err)
						return
					}
					for j, other := range secrets {
						if j != i && Verify(body, Sign(body, other), [][]byte{s}) == nil {
							t.Errorf("signature with %q accepted for secret %q", other, s)
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
}
