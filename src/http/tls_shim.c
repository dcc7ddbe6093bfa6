/*
 * tls_shim: a private "libssl.so" for civetweb.
 *
 * Debian 12's civetweb loads OpenSSL at run time with dlopen("libssl.so")
 * and looks its functions up by name.  One of them, SSL_get_peer_certificate,
 * is no longer exported by OpenSSL 3 (it is a macro for
 * SSL_get1_peer_certificate), so civetweb calls a NULL pointer on the first
 * TLS connection.  This library carries that one function and depends on
 * the real libssl.so.3 for everything else; the daemon loads it (by path,
 * RTLD_GLOBAL) before starting civetweb, whose dlopen("libssl.so") then
 * finds it by its soname, and dlsym resolves the rest through its
 * dependencies.  Built only as this shared object, never linked in.
 */
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate

X509 *SSL_get_peer_certificate(const SSL *s);

X509 *SSL_get_peer_certificate(const SSL *s)
{
	return SSL_get1_peer_certificate(s);
}
