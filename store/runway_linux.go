package store

import "syscall"

// directFlag opens the runway's file for direct I/O.
const directFlag = syscall.O_DIRECT
