module github.com/mismatch-rl/mismatch

go 1.24
