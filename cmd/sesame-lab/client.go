package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

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
	resp, err := postJSON(ctx, base+"/v1/session", map[string]string{"email": labEmail, "password": labPassword})
	if err != nil {
		return "", nil, fmt.Errorf("login: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", nil, fmt.Errorf("login: %s", resp.Status)
	}
	for _, c := range resp.Cookies() {
		if c.Name == server.CookieName {
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie == "" {
		return "", nil, errors.New("login: no session cookie in the answer")
	}
	// The cookie is __Host- and Secure, which a client keeps off plain
	// HTTP; it is sent by hand, as wrk sends it.
	body, err = get(ctx, base+"/v1/session", "Cookie", cookie)
	return cookie, body, err
}

// get returns the body of a 200 answer to GET u with one header.
func get(ctx context.Context, u, header, value string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(header, value)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
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
		return tokens{}, nil, fmt.Errorf("POST /v1/token: %s: %s", resp.Status, strings.TrimSpace(string(body)))
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
