package auth

import (
	"crypto/md5"
	"strings"
)

// The password hashes of htpasswd files that Pulsar's basic provider
// checks: traditional DES crypt(3) and Apache's MD5 ("$apr1$"). Both are
// weak by today's standards; bcrypt entries (htpasswd -B) are checked by
// golang.org/x/crypto/bcrypt in basic.go.

const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// cryptIndex maps a salt character to its 6-bit value, -1 if it is not in
// the alphabet.
func cryptIndex(c byte) int { return strings.IndexByte(cryptAlphabet, c) }

// desCrypt is traditional crypt(3): the first 8 characters of the password
// (7 bits each) are the DES key, the two salt characters perturb the
// expansion table, and a zero block is encrypted 25 times. The result is
// the salt followed by 11 characters.
func desCrypt(password []byte, salt string) (string, bool) {
	if len(salt) < 2 || cryptIndex(salt[0]) < 0 || cryptIndex(salt[1]) < 0 {
		return "", false
	}
	var key [64]byte
	for i := 0; i < 8 && i < len(password); i++ {
		for j := 0; j < 7; j++ {
			key[8*i+j] = (password[i] >> (6 - j)) & 1
		}
	}
	var e [48]int
	copy(e[:], desE[:])
	for i := 0; i < 2; i++ {
		v := cryptIndex(salt[i])
		for j := 0; j < 6; j++ {
			if (v>>j)&1 == 1 {
				e[6*i+j], e[6*i+j+24] = e[6*i+j+24], e[6*i+j]
			}
		}
	}
	ks := desKeySchedule(key)
	var block [64]byte
	for i := 0; i < 25; i++ {
		block = desEncryptBits(block, &ks, &e)
	}
	out := []byte(salt[:2])
	var bits [66]byte
	copy(bits[:], block[:])
	for i := 0; i < 11; i++ {
		c := 0
		for j := 0; j < 6; j++ {
			c = c<<1 | int(bits[6*i+j])
		}
		out = append(out, cryptAlphabet[c])
	}
	return string(out), true
}

// desKeySchedule derives the 16 round keys (48 bits each, one bit per
// byte) from a 64-bit key given one bit per byte, most significant first.
func desKeySchedule(key [64]byte) [16][48]byte {
	var cd [56]byte
	for i, p := range desPC1 {
		cd[i] = key[p-1]
	}
	var ks [16][48]byte
	for r := 0; r < 16; r++ {
		for s := 0; s < desShifts[r]; s++ {
			c0, d0 := cd[0], cd[28]
			copy(cd[0:27], cd[1:28])
			cd[27] = c0
			copy(cd[28:55], cd[29:56])
			cd[55] = d0
		}
		for i, p := range desPC2 {
			ks[r][i] = cd[p-1]
		}
	}
	return ks
}

// desEncryptBits encrypts one 64-bit block (one bit per byte) with DES,
// using e as the expansion table (crypt(3) swaps entries of it by salt).
func desEncryptBits(in [64]byte, ks *[16][48]byte, e *[48]int) [64]byte {
	var lr [64]byte
	for i, p := range desIP {
		lr[i] = in[p-1]
	}
	l, r := lr[:32], lr[32:]
	var left, right [32]byte
	copy(left[:], l)
	copy(right[:], r)
	for round := 0; round < 16; round++ {
		var x [48]byte
		for i := 0; i < 48; i++ {
			x[i] = right[e[i]-1] ^ ks[round][i]
		}
		var f [32]byte
		for s := 0; s < 8; s++ {
			b := x[6*s : 6*s+6]
			row := int(b[0])<<1 | int(b[5])
			col := int(b[1])<<3 | int(b[2])<<2 | int(b[3])<<1 | int(b[4])
			v := desS[s][row*16+col]
			for j := 0; j < 4; j++ {
				f[4*s+j] = (v >> (3 - j)) & 1
			}
		}
		var next [32]byte
		for i, p := range desP {
			next[i] = left[i] ^ f[p-1]
		}
		left, right = right, next
	}
	var pre [64]byte
	copy(pre[:32], right[:])
	copy(pre[32:], left[:])
	var out [64]byte
	for i, p := range desFP {
		out[i] = pre[p-1]
	}
	return out
}

// md5Crypt is the MD5-based crypt of FreeBSD ("$1$") and Apache ("$apr1$"):
// magic is the prefix, salt at most 8 characters.
func md5Crypt(password []byte, magic, salt string) string {
	if len(salt) > 8 {
		salt = salt[:8]
	}
	alt := md5.New()
	alt.Write(password)
	alt.Write([]byte(salt))
	alt.Write(password)
	altSum := alt.Sum(nil)

	ctx := md5.New()
	ctx.Write(password)
	ctx.Write([]byte(magic))
	ctx.Write([]byte(salt))
	for i := len(password); i > 0; i -= 16 {
		ctx.Write(altSum[:min(i, 16)])
	}
	for i := len(password); i != 0; i >>= 1 {
		if i&1 == 1 {
			ctx.Write([]byte{0})
		} else {
			ctx.Write(password[:1])
		}
	}
	final := ctx.Sum(nil)
	for i := 0; i < 1000; i++ {
		h := md5.New()
		if i&1 == 1 {
			h.Write(password)
		} else {
			h.Write(final)
		}
		if i%3 != 0 {
			h.Write([]byte(salt))
		}
		if i%7 != 0 {
			h.Write(password)
		}
		if i&1 == 1 {
			h.Write(final)
		} else {
			h.Write(password)
		}
		final = h.Sum(nil)
	}
	var out strings.Builder
	out.WriteString(magic)
	out.WriteString(salt)
	out.WriteByte('$')
	to64 := func(v uint32, n int) {
		for ; n > 0; n-- {
			out.WriteByte(cryptAlphabet[v&0x3f])
			v >>= 6
		}
	}
	for _, g := range [][3]int{{0, 6, 12}, {1, 7, 13}, {2, 8, 14}, {3, 9, 15}, {4, 10, 5}} {
		to64(uint32(final[g[0]])<<16|uint32(final[g[1]])<<8|uint32(final[g[2]]), 4)
	}
	to64(uint32(final[11]), 2)
	return out.String()
}

// DES tables (FIPS 46-3), 1-based bit positions.
var (
	desIP = [64]int{
		58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
		62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
		57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3,
		61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
	}
	desFP = [64]int{
		40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31,
		38, 6, 46, 14, 54, 22, 62, 30, 37, 5, 45, 13, 53, 21, 61, 29,
		36, 4, 44, 12, 52, 20, 60, 28, 35, 3, 43, 11, 51, 19, 59, 27,
		34, 2, 42, 10, 50, 18, 58, 26, 33, 1, 41, 9, 49, 17, 57, 25,
	}
	desE = [48]int{
		32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9,
		8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17,
		16, 17, 18, 19, 20, 21, 20, 21, 22, 23, 24, 25,
		24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
	}
	desP = [32]int{
		16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10,
		2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
	}
	desPC1 = [56]int{
		57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18,
		10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
		63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22,
		14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
	}
	desPC2 = [48]int{
		14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10,
		23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
		41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48,
		44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
	}
	desShifts = [16]int{1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1}
	desS      = [8][64]byte{
		{14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7,
			0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
			4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0,
			15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13},
		{15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10,
			3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
			0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15,
			13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9},
		{10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8,
			13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
			13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7,
			1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12},
		{7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15,
			13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
			10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4,
			3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14},
		{2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9,
			14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
			4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14,
			11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3},
		{12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11,
			10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
			9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6,
			4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13},
		{4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1,
			13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
			1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2,
			6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12},
		{13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7,
			1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
			7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8,
			2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11},
	}
)
