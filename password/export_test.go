package password

// Decode exposes decode to the black-box tests: it returns the parameters,
// salt and hash of a PHC string.
func Decode(s string) (p Params, salt, key []byte, err error) {
	d, err := decode(s)
	if err != nil {
		return Params{}, nil, nil, err
	}
	return Params{Memory: d.memory, Time: d.time, Threads: d.threads,
		SaltLen: uint32(len(d.salt)), KeyLen: uint32(len(d.key))}, d.salt, d.key, nil
}

// Encode exposes encode to the black-box tests.
func Encode(p Params, salt, key []byte) string {
	return encode(phc{memory: p.Memory, time: p.Time, threads: p.Threads, salt: salt, key: key})
}

// SetDerive replaces the argon2id function of h, so that tests can observe
// and hold hashes while they run.
func SetDerive(h *Hasher, f func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte) {
	h.derive = f
}
