module github.com/stephub/stephub/bench

go 1.26.8

require (
	github.com/gorilla/websocket v1.5.3
	github.com/stephub/stephub v0.0.0
)

require (
	github.com/golang-jwt/jwt/v5 v5.3.1 // indirect
	go.uber.org/goleak v1.3.0 // indirect
)

replace github.com/stephub/stephub => ../
