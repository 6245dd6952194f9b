/*
 * gateway/tls.c — the server's TLS context and what the peer's certificate says.
 */
#include "gateway/gw_int.h"

#include <stdio.h>
#include <string.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* First OpenSSL error of this thread's queue as text, then clears the queue. */
static void
ssl_err_text(char *buf, size_t n)
{
	unsigned long e = ERR_get_error();

	if (e == 0) {
		snprintf(buf, n, "no detail");
	} else {
		ERR_error_string_n(e, buf, n);
	}
	ERR_clear_error();
}

/*
 * Lets the handshake finish whatever the client's certificate is, and records the first
 * verification error in the connection (SSL app data). Safe because a certificate only
 * ever identifies a caller after the hello checks that its chain verified (conn.c); in
 * exchange a caller whose certificate is refused gets an ERROR frame that says why
 * ("client certificate not trusted: unable to get local issuer certificate") instead of a
 * bare TLS alert, and an API-key caller who also presents some certificate is not refused.
 */
static int
verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct gw_conn *c = ssl != NULL ? SSL_get_app_data(ssl) : NULL;

	if (!ok && c != NULL && c->verify_err == X509_V_OK) {
		c->verify_err = X509_STORE_CTX_get_error(xs);
		if (c->verify_err == X509_V_OK) {
			c->verify_err = X509_V_ERR_UNSPECIFIED;
		}
	}
	return 1;
}

int
gw_tls_ctx_new(const struct cfg_daemon *cfg, SSL_CTX **out, char *err, size_t errsz)
{
	STACK_OF(X509_NAME) *names = NULL;
	SSL_CTX *ctx = NULL;
	char e[256];
	int r = GW_ERR_TLS;

	*out = NULL;
	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		ssl_err_text(e, sizeof(e));
		snprintf(err, errsz, "SSL_CTX_new: %s", e);
		goto out;
	}
	/* The client module speaks TLS 1.3 only; older versions are refused in the handshake. */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) {
		ssl_err_text(e, sizeof(e));
		snprintf(err, errsz, "cannot require TLS 1.3: %s", e);
		goto out;
	}
	/* A peer that closes TCP without close_notify is simply gone (EOF), not an error: the
	 * protocol's own framing detects a truncated frame. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* No session resumption: every connection authenticates afresh (a resumed session
	 * would carry the client certificate of an earlier connection). */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (cfg->tls.cert == NULL || cfg->tls.key == NULL) {
		snprintf(err, errsz, "tls.cert and tls.key are required");
		goto out;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls.cert) != 1) {
		ssl_err_text(e, sizeof(e));
		snprintf(err, errsz, "tls.cert %s: %s", cfg->tls.cert, e);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls.key, SSL_FILETYPE_PEM) != 1) {
		ssl_err_text(e, sizeof(e));
		snprintf(err, errsz, "tls.key %s: %s", cfg->tls.key, e);
		goto out;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ssl_err_text(e, sizeof(e));
		snprintf(err, errsz, "tls.key %s does not match tls.cert %s", cfg->tls.key,
		         cfg->tls.cert);
		goto out;
	}
	if (cfg->tls.client_ca != NULL && *cfg->tls.client_ca != '\0') {
		if (SSL_CTX_load_verify_locations(ctx, cfg->tls.client_ca, NULL) != 1) {
			ssl_err_text(e, sizeof(e));
			snprintf(err, errsz, "tls.client_ca %s: %s", cfg->tls.client_ca, e);
			goto out;
		}
		/* The CA names tell a client with several certificates which one to send. */
		if ((names = SSL_load_client_CA_file(cfg->tls.client_ca)) != NULL) {
			SSL_CTX_set_client_CA_list(ctx, names);
			names = NULL; /* transferred */
		}
		/* Requested, never required (no SSL_VERIFY_FAIL_IF_NO_PEER_CERT): API-key clients
		 * have no certificate. */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
		SSL_CTX_set_verify_depth(ctx, 8);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	*out = ctx;
	ctx = NULL; /* transferred */
	r = 0;
out:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return r;
}

void
gw_tls_peer(SSL *ssl, long cb_verify_err, struct gw_peer *out)
{
	GENERAL_NAMES *sans = NULL;
	X509 *cert;
	BIO *bio = NULL;
	int i, n;

	memset(out, 0, sizeof(*out));
	out->verify_err = X509_V_OK;
	if ((cert = SSL_get0_peer_certificate(ssl)) == NULL) {
		return;
	}
	out->has_cert = 1;
	out->verify_err = cb_verify_err != X509_V_OK ? cb_verify_err : SSL_get_verify_result(ssl);
	if ((bio = BIO_new(BIO_s_mem())) != NULL &&
	    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
		n = BIO_read(bio, out->subject, (int)sizeof(out->subject) - 1);
		out->subject[n > 0 ? n : 0] = '\0';
	}
	BIO_free(bio);
	sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		const unsigned char *d;
		int len;

		if (gn->type != GEN_URI || out->n_uris >= GW_MAX_URIS) {
			continue;
		}
		d = ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
		len = ASN1_STRING_length(gn->d.uniformResourceIdentifier);
		/* An embedded NUL would let "a\0b" match "a": such a name is ignored. */
		if (len <= 0 || (size_t)len >= sizeof(out->uris[0]) ||
		    memchr(d, 0, (size_t)len) != NULL) {
			continue;
		}
		memcpy(out->uris[out->n_uris], d, (size_t)len);
		out->uris[out->n_uris][len] = '\0';
		out->n_uris++;
	}
	GENERAL_NAMES_free(sans);
	ERR_clear_error();
}

void
gw_tls_errors_drain(struct bufferevent *bev, char *buf, size_t n)
{
	unsigned long e;

	buf[0] = '\0';
	while (bev != NULL && (e = bufferevent_get_openssl_error(bev)) != 0) {
		if (buf[0] == '\0') {
			ERR_error_string_n(e, buf, n);
		}
	}
	while ((e = ERR_get_error()) != 0) {
		if (buf[0] == '\0') {
			ERR_error_string_n(e, buf, n);
		}
	}
}
