// Package web is Sesame's sign-in portal: the pages a person uses
// (/login, /register, /account, /logout, /admin), rendered on the server
// with html/template from templates embedded in the binary, styled by one
// small stylesheet of its own and working without JavaScript.
//
// Every page is sent with a Content-Security-Policy that allows no script
// at all and no framing, and every form post from another origin is refused
// with a page, by the same check as the API's. ReturnTo decides where a
// sign-in or sign-out may send the browser next, so that no link to Sesame
// is an open redirect.
package web
