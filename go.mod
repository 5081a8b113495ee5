module github.com/lakirotator/lakirotator

go 1.26.8
