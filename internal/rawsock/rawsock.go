// Package rawsock hands the load tools' epoll readers the descriptors of
// sockets that Go's net package opened.
package rawsock

import "syscall"

// Dup returns a duplicate of c's descriptor, which stays open when c is
// closed.
func Dup(c syscall.Conn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, dupErr := -1, error(nil)
	if err := raw.Control(func(s uintptr) { fd, dupErr = syscall.Dup(int(s)) }); err != nil {
		return -1, err
	}
	return fd, dupErr
}
