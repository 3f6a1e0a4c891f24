module github.com/configd/configd/bench

go 1.26.8
