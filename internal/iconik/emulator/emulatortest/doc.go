// Package emulatortest starts an iconik emulator on 127.0.0.1 for a test and
// stops it when the test ends. Every /API/ request and answer is checked
// against iconik's official specs there, so no test can forget the contract
// check. It must never be imported by non-test code.
package emulatortest
