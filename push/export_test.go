package push

import (
	"context"
	"net/http"
)

// Dial posts to url with s's client, without the endpoint check: the dialer alone decides.
func Dial(s *Sender, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, nil)
	if err != nil {
		return nil, err
	}
	return s.client.Do(req)
}
