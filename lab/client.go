package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sesameauth/sesame/server"
)

// The lab's one account.
const (
	labEmail    = "lab@example.com"
	labPassword = "correct horse battery staple"
)

// register creates the lab's account at the Sesame server at base (201,
// or 409 if it exists already).
func register(ctx context.Context, base string) error {
	resp, err := postJSON(ctx, base+"/v1/users", map[string]string{"email": labEmail, "password": labPassword})
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusConflict {
		return fmt.Errorf("register: %s", resp.Status)
	}
	return nil
}

// signIn registers the lab's account at the Sesame server at base, logs
// in, and returns the session cookie as a Cookie header value and the body
// of GET /v1/session with it.
func signIn(ctx context.Context, base string) (cookie string, body []byte, err error) {
	if err := register(ctx, base); err != nil {
		return "", nil, err
	}
	cookie, err = logIn(ctx, base)
	if err != nil {
		return "", nil, err
	}
	// The cookie is __Host- and Secure, which a client keeps off plain
	// HTTP; it is sent by hand, as wrk sends it.
	body, err = get(ctx, base+"/v1/session", "Cookie", cookie)
	return cookie, body, err
}

// logIn starts a cookie session for the lab's account at base (POST
// /v1/session) and returns its cookie as a Cookie header value.
func logIn(ctx context.Context, base string) (cookie string, err error) {
	resp, err := postJSON(ctx, base+"/v1/session", map[string]string{"email": labEmail, "password": labPassword})
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", answerError("login", resp, body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == server.CookieName {
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie == "" {
		return "", errors.New("login: no session cookie in the answer")
	}
	return cookie, nil
}

// get returns the body of a 200 answer to GET u with one header.
func get(ctx context.Context, u, header, value string) ([]byte, error) {
	_, body, err := getWithHeaders(ctx, u, header, value)
	return body, err
}

// getWithHeaders is get, returning the answer's headers too.
func getWithHeaders(ctx context.Context, u, header, value string) (http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set(header, value)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	return resp.Header, body, nil
}

func postJSON(ctx context.Context, u string, v any) (*http.Response, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return http.DefaultClient.Do(req)
}

// busyError is a 503 answer: the server's password hashing was saturated
// (API.md), and it asks to be retried after wait.
type busyError struct {
	err  error
	wait time.Duration
}

func (e *busyError) Error() string { return e.err.Error() }
func (e *busyError) Unwrap() error { return e.err }

// answerError is the error of op's answer resp, whose status was not the
// one wanted, with its body: a *busyError if it is a 503.
func answerError(op string, resp *http.Response, body []byte) error {
	err := fmt.Errorf("%s: %s: %s", op, resp.Status, strings.TrimSpace(string(body)))
	if resp.StatusCode != http.StatusServiceUnavailable {
		return err
	}
	wait := time.Second
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		wait = time.Duration(s) * time.Second
	}
	return &busyError{err: err, wait: wait}
}

// retryBusy calls f until it returns anything but a *busyError, at most
// tries times, waiting between calls as each busy answer asks.
func retryBusy[T any](ctx context.Context, tries int, f func() (T, error)) (T, error) {
	for {
		v, err := f()
		busy, ok := errors.AsType[*busyError](err)
		if tries--; tries <= 0 || !ok {
			return v, err
		}
		select {
		case <-time.After(busy.wait):
		case <-ctx.Done():
			return v, err
		}
	}
}

// tokens is the token endpoint's answer.
type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// passwordGrant starts a refresh family for the lab's account at base
// (POST /v1/token, grant_type=password) and returns the answer and its raw
// body.
func passwordGrant(ctx context.Context, base string) (tokens, []byte, error) {
	return tokenGrant(ctx, http.DefaultClient, base, url.Values{
		"grant_type": {"password"}, "username": {labEmail}, "password": {labPassword},
	}.Encode())
}

// refreshForm is the form body of a refresh grant.
func refreshForm(refresh string) string {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}.Encode()
}

// tokenGrant posts form to base's token endpoint and decodes the 200
// answer.
func tokenGrant(ctx context.Context, c *http.Client, base, form string) (tokens, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/token", strings.NewReader(form))
	if err != nil {
		return tokens{}, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return tokens{}, nil, fmt.Errorf("POST /v1/token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return tokens{}, nil, fmt.Errorf("POST /v1/token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return tokens{}, nil, answerError("POST /v1/token", resp, body)
	}
	t, err := decodeTokens(body)
	return t, body, err
}

// decodeTokens decodes a token endpoint answer that must hold both tokens.
func decodeTokens(body []byte) (tokens, error) {
	var t tokens
	if err := json.Unmarshal(body, &t); err != nil {
		return tokens{}, fmt.Errorf("token answer: %w", err)
	}
	if t.AccessToken == "" || t.RefreshToken == "" {
		return tokens{}, errors.New("token answer: no access_token or refresh_token")
	}
	return t, nil
}
