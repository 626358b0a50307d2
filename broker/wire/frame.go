package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Magic values that may start the headers-and-payload part of a frame.
const (
	MagicCRC32C        = 0x0e01
	MagicBrokerEntryMD = 0x0e02
)

// ErrChecksum reports a SEND whose CRC32C does not match its metadata and
// payload.
var ErrChecksum = errors.New("payload checksum mismatch")

// ErrFrameTooLarge reports a frame whose declared size exceeds the limit.
var ErrFrameTooLarge = errors.New("frame too large")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32C computes the checksum the protocol uses over metadata size,
// metadata and payload.
func CRC32C(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Frame is one decoded frame.
type Frame struct {
	Cmd *Command
	// Payload is, for SEND and MESSAGE, the metadata size, metadata and
	// payload (everything after the magic and checksum); nil otherwise.
	Payload []byte
	// Checksum is the CRC32C over Payload (verified on decode).
	Checksum uint32
}

// ReadFrame reads and decodes one frame. maxFrame bounds the declared total
// size. Any malformed frame yields an error; the caller should close the
// connection after answering it if it can.
func ReadFrame(r *bufio.Reader, maxFrame int) (*Frame, error) {
	buf, err := readFrameBody(r, maxFrame)
	if err != nil {
		return nil, err
	}
	return DecodeFrame(buf)
}

// readFrameBody reads one frame's total size and then its body
// (everything after the size). maxFrame bounds the declared size.
func readFrameBody(r *bufio.Reader, maxFrame int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	total := binary.BigEndian.Uint32(hdr[:])
	if total < 4 || int64(total) > int64(maxFrame) {
		return nil, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, total)
	}
	buf := make([]byte, total)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// splitCommand splits a frame body into its command and what follows the
// command (a payload, or nothing).
func splitCommand(buf []byte) (cmd, rest []byte, err error) {
	if len(buf) < 4 {
		return nil, nil, fmt.Errorf("%w: short frame", ErrMalformed)
	}
	cmdSize := binary.BigEndian.Uint32(buf)
	if uint64(cmdSize) > uint64(len(buf)-4) {
		return nil, nil, fmt.Errorf("%w: command size %d exceeds frame", ErrMalformed, cmdSize)
	}
	return buf[4 : 4+cmdSize], buf[4+cmdSize:], nil
}

// DecodeFrame decodes a frame body (everything after the total size).
func DecodeFrame(buf []byte) (*Frame, error) {
	body, rest, err := splitCommand(buf)
	if err != nil {
		return nil, err
	}
	cmd, err := DecodeCommand(body)
	if err != nil {
		return nil, err
	}
	f := &Frame{Cmd: cmd}
	if cmd.Type != TypeSend {
		if len(rest) != 0 {
			return nil, fmt.Errorf("%w: unexpected payload after command %d", ErrMalformed, cmd.Type)
		}
		return f, nil
	}
	if len(rest) >= 2 && binary.BigEndian.Uint16(rest) == MagicCRC32C {
		if len(rest) < 6 {
			return nil, fmt.Errorf("%w: truncated checksum", ErrMalformed)
		}
		sum := binary.BigEndian.Uint32(rest[2:])
		rest = rest[6:]
		if CRC32C(rest) != sum {
			// The command is returned so the caller can answer the SEND.
			return f, ErrChecksum
		}
		f.Checksum = sum
	} else {
		f.Checksum = CRC32C(rest)
	}
	if _, err := ParseMetadata(rest); err != nil {
		return nil, err
	}
	f.Payload = rest
	return f, nil
}

// AppendFrame appends a complete frame carrying cmd to dst.
func AppendFrame(dst, cmd []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(4+len(cmd)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(cmd)))
	return append(dst, cmd...)
}

// AppendPayloadFrame appends a frame carrying cmd followed by the magic,
// checksum and payload (metadata size, metadata and payload).
func AppendPayloadFrame(dst, cmd []byte, checksum uint32, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(4+len(cmd)+6+len(payload)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(cmd)))
	dst = append(dst, cmd...)
	dst = binary.BigEndian.AppendUint16(dst, MagicCRC32C)
	dst = binary.BigEndian.AppendUint32(dst, checksum)
	return append(dst, payload...)
}
