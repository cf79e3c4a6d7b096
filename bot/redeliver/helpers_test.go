package redeliver

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
)

// deliverTo posts a signed delivery to the world's webhook, as GitHub's
// first attempt would have.
func deliverTo(w *world, id string, body []byte) error {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	req, err := http.NewRequest("POST", w.hook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "pull_request")
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		return fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return nil
}
