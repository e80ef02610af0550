// Package forwardauth decides which requests a reverse proxy may pass on to
// an application, for Sesame's forward-authentication endpoints: the
// operator's access rules, compiled once from YAML, and the canonical form
// of a request path that the rules are matched against.
//
// A rule file, as `sesame serve --access-rules FILE` reads it:
//
//	default: deny              # deny | signed_in | bypass (when no rule matches)
//	rules:
//	  - host: public.example.test          # exact, or "*.example.test"
//	    policy: bypass                     # no sign-in needed
//	  - host: "*.example.test"
//	    path: /admin/                      # prefix of the canonical path
//	    methods: [GET, POST]               # optional
//	    roles: [admin]                     # signed in with any of these roles
//	  - host: app.example.test
//	    policy: signed_in
//	    audience: https://app.example.test # aud of the minted token
//
// Parse (or Load) checks the whole file, strictly: an unknown key, an unknown
// policy, a rule with both or neither of policy and roles, or a host, path
// or method that could never match as written, is an error naming the file
// and line, and nothing is returned. A default left out is deny.
//
// For each request, CanonicalPath turns the original URI into the path the
// rules see, refusing the ambiguous ones (an encoded slash or dot segment, a
// bad escape), NormalizeHost does the same for the host, and Rules.Decide
// returns the first rule that matches, without allocating:
//
//	rules, err := forwardauth.Load("rules.yaml")
//	path, err := forwardauth.CanonicalPath(r.Header.Get("X-Forwarded-Uri")) // err: 400
//	d := rules.Decide(forwardauth.NormalizeHost(host), method, path)
//	switch d.Policy { case forwardauth.Deny: ... }
package forwardauth
