package forwardauth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Policy is what a rule, or the default, asks of a request.
type Policy uint8

// The policies. The zero value is Deny, so a Rules left empty refuses.
const (
	Deny     Policy = iota // refused (403), signed in or not
	SignedIn               // any signed-in user
	Bypass                 // anyone; identity still passed on when signed in
	Roles                  // a signed-in user with one of the rule's roles
)

func (p Policy) String() string {
	switch p {
	case Deny:
		return "deny"
	case SignedIn:
		return "signed_in"
	case Bypass:
		return "bypass"
	case Roles:
		return "roles"
	}
	return "policy(" + strconv.Itoa(int(p)) + ")"
}

func parsePolicy(s string) (Policy, bool) {
	switch s {
	case "deny":
		return Deny, true
	case "signed_in":
		return SignedIn, true
	case "bypass":
		return Bypass, true
	}
	return 0, false
}

// Rule is one compiled access rule.
type Rule struct {
	// Name labels the rule in metrics and logs: the file's name: field, or
	// "rule N" (N counting from 1).
	Name string
	// Line is where the rule starts in its file.
	Line int
	// Host is "" (any host), an exact lower-case name, or "*." and a
	// suffix, which matches any name ending in "." + the suffix.
	Host string
	// Path is a canonical path prefix ("/" matches every path). A prefix
	// ending in "/" also matches the path without that slash, so
	// "/admin/" covers "/admin" too.
	Path string
	// Methods, upper case, are the only methods the rule matches; nil
	// matches every method.
	Methods []string
	Policy  Policy
	// Roles is set when Policy is Roles: the user needs any one of them.
	Roles []string
	// Audience is the aud of the token minted for the upstream; "" means
	// the original request's <proto>://<host>.
	Audience string
}

// Rules is a compiled rule file: the first rule that matches a request
// decides, and Default decides when none does. It is never changed after
// Parse returns it, so it is safe for concurrent use.
type Rules struct {
	Default Policy
	Rules   []Rule
	// Warnings are things about the file worth a log line that do not make
	// it invalid, such as a rule with methods whose other methods fall to
	// a broader rule later in the file.
	Warnings []string
}

// SignedInDefault is what applies without a rule file: every request needs
// a signed-in user.
func SignedInDefault() *Rules { return &Rules{Default: SignedIn} }

// Decision is the rule that decides a request.
type Decision struct {
	// Index is the rule's position in Rules.Rules, or -1 for the default.
	Index int
	// Rule is the deciding rule; nil for the default.
	Rule *Rule
	// Policy is the rule's (or the default's) policy.
	Policy Policy
}

// Name returns the deciding rule's name, or "default".
func (d Decision) Name() string {
	if d.Rule == nil {
		return "default"
	}
	return d.Rule.Name
}

// Decide returns the first rule that matches a request for host (as
// NormalizeHost leaves it), method (upper case) and path (canonical, as
// CanonicalPath returns it), or the default. It does not allocate.
func (rs *Rules) Decide(host, method, path string) Decision {
	for i := range rs.Rules {
		r := &rs.Rules[i]
		if r.matches(host, method, path) {
			return Decision{Index: i, Rule: r, Policy: r.Policy}
		}
	}
	return Decision{Index: -1, Policy: rs.Default}
}

func (r *Rule) matches(host, method, path string) bool {
	return hostMatches(r.Host, host) && pathMatches(r.Path, path) && methodMatches(r.Methods, method)
}

func hostMatches(pattern, host string) bool {
	switch {
	case pattern == "":
		return true
	case strings.HasPrefix(pattern, "*."):
		suffix := pattern[1:] // ".example.test"
		return len(host) > len(suffix) && strings.HasSuffix(host, suffix)
	}
	return host == pattern
}

func pathMatches(prefix, path string) bool {
	if strings.HasPrefix(path, prefix) {
		return true
	}
	// "/admin/" covers "/admin": most servers answer both the same.
	return len(prefix) > 1 && prefix[len(prefix)-1] == '/' && path == prefix[:len(prefix)-1]
}

func methodMatches(methods []string, m string) bool {
	if methods == nil {
		return true
	}
	for _, x := range methods {
		if x == m {
			return true
		}
	}
	return false
}

// NormalizeHost returns the host of a Host-style value ("App.Example.test",
// "app.example.test:8443", "[::1]:80", "app.example.test.") as rules
// compare it: without the port, without a trailing dot, in lower case.
// It allocates only when the host has upper-case letters.
func NormalizeHost(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[1:i]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	return strings.ToLower(h)
}

// The file's shape, decoded strictly: an unknown key is an error.
type fileYAML struct {
	Default string     `yaml:"default"`
	Rules   []ruleYAML `yaml:"rules"`
}

type ruleYAML struct {
	Name     string    `yaml:"name"`
	Host     string    `yaml:"host"`
	Path     string    `yaml:"path"`
	Methods  *[]string `yaml:"methods"`
	Policy   string    `yaml:"policy"`
	Roles    *[]string `yaml:"roles"`
	Audience string    `yaml:"audience"`
}

// MaxFileBytes bounds a rule file.
const MaxFileBytes = 1 << 20

// Load reads and parses the rule file at path (see Parse).
func Load(path string) (*Rules, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse compiles a rule file. name (the file's path) starts every error
// message, followed by the line and the reason: "rules.yaml:7: rule has
// both policy and roles". A file that is not YAML, has an unknown key, an
// unknown policy, a rule without exactly one of policy and roles, a host,
// path, method or audience that cannot match as written, or more than one
// document, is an error, and nothing is returned.
func Parse(name string, data []byte) (*Rules, error) {
	fail := func(line int, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...))
	}
	if len(data) > MaxFileBytes {
		return nil, fail(1, "the file is larger than %d bytes", MaxFileBytes)
	}
	var f fileYAML
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fail(1, "the file is empty; it needs at least default: or rules:")
		}
		return nil, yamlError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fail(extra.Line, "a second YAML document; a rule file has one")
	} else if !errors.Is(err, io.EOF) {
		return nil, yamlError(name, err)
	}
	// The same bytes as a tree, for the line of each rule and key.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(name, err)
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return nil, fail(doc.Line, "the file is not a mapping with default: and rules:")
	}
	rs := &Rules{Default: Deny}
	if f.Default != "" {
		p, ok := parsePolicy(f.Default)
		if !ok {
			return nil, fail(keyLine(doc, "default"), "unknown default %q; want deny, signed_in or bypass", f.Default)
		}
		rs.Default = p
	}
	var items []*yaml.Node
	if n := valueOf(doc, "rules"); n != nil {
		items = n.Content
	}
	for i, ry := range f.Rules {
		item := &yaml.Node{Line: doc.Line}
		if i < len(items) {
			item = items[i]
		}
		r, err := compileRule(i, item, ry)
		if err != nil {
			return nil, fail(err.line, "rule %d: %s", i+1, err.msg)
		}
		rs.Rules = append(rs.Rules, r)
	}
	rs.Warnings = shadowWarnings(name, rs.Rules)
	return rs, nil
}

type ruleError struct {
	line int
	msg  string
}

func compileRule(i int, item *yaml.Node, ry ruleYAML) (Rule, *ruleError) {
	at := func(key string) int {
		if l := keyLine(item, key); l > 0 {
			return l
		}
		return item.Line
	}
	bad := func(key, format string, args ...any) (Rule, *ruleError) {
		return Rule{}, &ruleError{at(key), fmt.Sprintf(format, args...)}
	}
	r := Rule{Name: ry.Name, Line: item.Line, Audience: ry.Audience}
	if r.Name == "" {
		r.Name = "rule " + strconv.Itoa(i+1)
	}
	switch {
	case ry.Policy != "" && ry.Roles != nil:
		return bad("roles", "has both policy and roles; give one")
	case ry.Policy == "" && ry.Roles == nil:
		return bad("", "has neither policy nor roles; give one")
	case ry.Policy != "":
		p, ok := parsePolicy(ry.Policy)
		if !ok {
			return bad("policy", "unknown policy %q; want deny, signed_in or bypass", ry.Policy)
		}
		r.Policy = p
	default:
		if len(*ry.Roles) == 0 {
			return bad("roles", "roles is empty; name at least one role")
		}
		for _, role := range *ry.Roles {
			if strings.TrimSpace(role) == "" || strings.ContainsAny(role, ", \t") {
				return bad("roles", "role %q is empty or has a comma or space", role)
			}
		}
		r.Policy, r.Roles = Roles, append([]string(nil), *ry.Roles...)
	}
	if h := ry.Host; h != "" {
		norm := strings.ToLower(h)
		label := strings.TrimPrefix(norm, "*.")
		switch {
		case strings.Contains(label, "*"):
			return bad("host", "host %q: a wildcard is only \"*.\" at the start", h)
		case label == "" || strings.HasPrefix(label, ".") || strings.HasSuffix(label, ".") || strings.Contains(label, ".."):
			return bad("host", "host %q is not a host name", h)
		case strings.ContainsAny(label, ":/[] \t"):
			return bad("host", "host %q: give the name alone, without a scheme, port or path", h)
		}
		r.Host = norm
	}
	r.Path = "/"
	if p := ry.Path; p != "" {
		c, err := CanonicalPath(p)
		switch {
		case strings.Contains(p, "?"):
			return bad("path", "path %q has a query; rules match paths only", p)
		case err != nil:
			return bad("path", "path %q: %v", p, err)
		case c != p:
			return bad("path", "path %q is not canonical; requests are matched as %q", p, c)
		}
		r.Path = p
	}
	if ry.Methods != nil {
		if len(*ry.Methods) == 0 {
			return bad("methods", "methods is empty; leave it out to match every method")
		}
		for _, m := range *ry.Methods {
			if !isToken(m) {
				return bad("methods", "method %q is not an HTTP method", m)
			}
			r.Methods = append(r.Methods, strings.ToUpper(m))
		}
	}
	if a := ry.Audience; a != "" {
		if strings.ContainsAny(a, " \t\r\n") {
			return bad("audience", "audience %q has white space", a)
		}
		if strings.Contains(a, ":") {
			if u, err := url.Parse(a); err != nil || u.Scheme == "" {
				return bad("audience", "audience %q is not a URI", a)
			}
		}
		if r.Policy == Deny {
			return bad("audience", "a deny rule mints no token; audience has no use")
		}
	}
	return r, nil
}

// isToken reports whether s is an HTTP token (RFC 9110 §5.6.2), as a
// method is.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// shadowWarnings finds each rule with methods whose hosts and paths overlap
// a later rule's that matches other methods and answers differently: a
// request with another method goes on to that later rule, which may let it
// through.
func shadowWarnings(name string, rules []Rule) []string {
	var out []string
	for i, r := range rules {
		if r.Methods == nil {
			continue
		}
		for _, later := range rules[i+1:] {
			if !hostsOverlap(later.Host, r.Host) || !pathsOverlap(later.Path, r.Path) || !otherMethods(later.Methods, r.Methods) {
				continue
			}
			if later.Policy == r.Policy && equalStrings(later.Roles, r.Roles) {
				if hostCovers(later.Host, r.Host) && pathMatches(later.Path, r.Path) {
					break // the other methods all get the same answer
				}
				continue
			}
			out = append(out, fmt.Sprintf("%s:%d: %s matches only %s; other methods on its hosts and paths fall to %s (line %d, %s)",
				name, r.Line, r.Name, strings.Join(r.Methods, ", "), later.Name, later.Line, describe(later)))
			break
		}
	}
	return out
}

func describe(r Rule) string {
	if r.Policy == Roles {
		return "roles " + strings.Join(r.Roles, ", ")
	}
	return "policy " + r.Policy.String()
}

func hostsOverlap(a, b string) bool { return hostCovers(a, b) || hostCovers(b, a) }

func pathsOverlap(a, b string) bool { return pathMatches(a, b) || pathMatches(b, a) }

// hostCovers reports whether every host that pattern inner matches is also
// matched by outer.
func hostCovers(outer, inner string) bool {
	switch {
	case outer == "":
		return true
	case inner == "":
		return false
	case strings.HasPrefix(outer, "*."):
		suffix := outer[1:]
		return strings.HasSuffix(inner, suffix) && len(strings.TrimPrefix(inner, "*")) > len(suffix) || inner == outer
	}
	return outer == inner
}

// otherMethods reports whether outer matches some method inner does not.
func otherMethods(outer, inner []string) bool {
	if outer == nil {
		return true
	}
	for _, m := range outer {
		if !methodMatches(inner, m) {
			return true
		}
	}
	return false
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// keyLine returns the line of key in mapping m, or 0.
func keyLine(m *yaml.Node, key string) int {
	if m == nil || m.Kind != yaml.MappingNode {
		return 0
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i].Line
		}
	}
	return 0
}

// valueOf returns the value of key in mapping m, or nil.
func valueOf(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

var (
	yamlLine     = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)
)

// yamlError turns the YAML library's error into "name:line: reason" lines.
func yamlError(name string, err error) error {
	var te *yaml.TypeError
	var msgs []string
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var out []string
	for _, m := range msgs {
		m = unknownField.ReplaceAllString(strings.TrimSpace(m), "unknown key $1")
		if sm := yamlLine.FindStringSubmatch(m); sm != nil {
			out = append(out, fmt.Sprintf("%s:%s: %s", name, sm[1], strings.TrimPrefix(sm[2], "yaml: ")))
		} else {
			out = append(out, fmt.Sprintf("%s: %s", name, strings.TrimPrefix(m, "yaml: ")))
		}
	}
	return errors.New(strings.Join(out, "\n"))
}
