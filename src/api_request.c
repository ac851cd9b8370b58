// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Control socket requests: the line form ("save --stop /x") and the JSON form
 * ({"cmd":"save","path":"/x","stop":true}) parse into the same struct, so the
 * two cannot drift apart. See docs/api.md.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

static const char *const cmd_names[] = {
	[API_PAUSE] = "pause",	       [API_RESUME] = "resume",	  [API_STATUS] = "status",
	[API_SAVE] = "save",	       [API_STOP] = "stop",	  [API_VSOCK] = "vsock",
	[API_SUBSCRIBE] = "subscribe", [API_CONSOLE] = "console", [API_BALLOON] = "balloon",
};

static int __attribute__((format(printf, 3, 4))) fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* "268435456", "256M", "1G": bytes (binary suffixes K, M, G). */
static int parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	unsigned int shift = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p == 'K' || *p == 'k')
		shift = 10;
	else if (*p == 'M' || *p == 'm')
		shift = 20;
	else if (*p == 'G' || *p == 'g')
		shift = 30;
	if (shift)
		p++;
	if (*p || v > UINT64_MAX >> shift)
		return -EINVAL;
	*out = v << shift;
	return 0;
}

/* The checks both forms share, once the command, path and flag are known. */
static int finish(const char *cmd, const char *path, bool has_stop, bool stop,
		  struct api_request *req, char *err, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(cmd_names) / sizeof(cmd_names[0]); i++)
		if (!strcmp(cmd, cmd_names[i]))
			break;
	if (i == sizeof(cmd_names) / sizeof(cmd_names[0]))
		return fail(err, len, "unknown command '%.64s'", cmd);
	req->cmd = i;
	req->path = NULL;
	req->stop = false;
	req->raw = false;
	req->port = 0;
	req->has_size = false;
	req->size = 0;
	if (req->cmd == API_BALLOON) {
		if (has_stop)
			return fail(err, len, "usage: balloon [SIZE]");
		if (path && parse_size(path, &req->size))
			return fail(err, len,
				    "balloon: bad size '%.32s' (bytes, or a number with K, M or G)",
				    path);
		req->has_size = path != NULL;
		return 0;
	}
	if (req->cmd == API_VSOCK) {
		char *end;
		unsigned long v;

		if (!path || has_stop || path[0] < '0' || path[0] > '9')
			return fail(err, len, "usage: vsock PORT");
		errno = 0;
		v = strtoul(path, &end, 10);
		if (*end || errno || v > UINT32_MAX)
			return fail(err, len, "vsock: bad port '%.32s' (0..4294967295)", path);
		req->port = v;
		return 0;
	}
	if (req->cmd != API_SAVE) {
		if (path || has_stop)
			return fail(err, len, "'%s' takes no argument", cmd);
		return 0;
	}
	if (!path || !*path)
		return fail(err, len, "usage: save [--stop] [--raw] PATH");
	/* Our cwd is not the client's: it resolves relative paths itself. */
	if (path[0] != '/')
		return fail(err, len, "save: PATH must be absolute");
	req->path = path;
	req->stop = stop;
	return 0;
}

/* "cmd" or "cmd ARG"; save's PATH is the rest of the line, verbatim. */
static int parse_line(char *line, struct api_request *req, char *err, size_t len)
{
	char *arg = strchr(line, ' ');
	bool stop = false, raw = false;
	int ret;

	if (arg)
		*arg++ = '\0';
	/* save's options come first, in any order, each once. */
	while (arg && !strcmp(line, "save")) {
		bool *flag = !strncmp(arg, "--stop", 6)	 ? &stop
			     : !strncmp(arg, "--raw", 5) ? &raw
							 : NULL;
		size_t n = flag == &stop ? 6 : 5;

		if (!flag || (arg[n] && arg[n] != ' ') || *flag)
			break;
		*flag = true;
		arg = arg[n] ? arg + n + 1 : NULL;
	}
	ret = finish(line, arg, stop, stop, req, err, len);
	req->raw = raw && !ret;
	return ret;
}

static char *skip_ws(char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static int hex4(const char *p, unsigned int *out)
{
	unsigned int v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -EINVAL;
	}
	*out = v;
	return 0;
}

static char *put_utf8(char *d, unsigned int cp)
{
	if (cp < 0x80) {
		*d++ = cp;
	} else if (cp < 0x800) {
		*d++ = 0xc0 | cp >> 6;
		*d++ = 0x80 | (cp & 0x3f);
	} else if (cp < 0x10000) {
		*d++ = 0xe0 | cp >> 12;
		*d++ = 0x80 | (cp >> 6 & 0x3f);
		*d++ = 0x80 | (cp & 0x3f);
	} else {
		*d++ = 0xf0 | cp >> 18;
		*d++ = 0x80 | (cp >> 12 & 0x3f);
		*d++ = 0x80 | (cp >> 6 & 0x3f);
		*d++ = 0x80 | (cp & 0x3f);
	}
	return d;
}

/*
 * The JSON string at *pp (its opening quote), decoded in place: the decoded
 * form is never longer, so the writer stays behind the reader.
 */
static int json_string(char **pp, char **out)
{
	char *p = *pp + 1, *d = *pp;
	unsigned int cp, lo;

	*out = d;
	for (;;) {
		unsigned char c = *p++;

		if (c == '"')
			break;
		if (c < 0x20) /* the end of the line included */
			return -EINVAL;
		if (c != '\\') {
			*d++ = c;
			continue;
		}
		switch ((c = *p++)) {
		case '"':
		case '\\':
		case '/':
			*d++ = c;
			break;
		case 'b':
			*d++ = '\b';
			break;
		case 'f':
			*d++ = '\f';
			break;
		case 'n':
			*d++ = '\n';
			break;
		case 'r':
			*d++ = '\r';
			break;
		case 't':
			*d++ = '\t';
			break;
		case 'u':
			if (hex4(p, &cp))
				return -EINVAL;
			p += 4;
			if (cp >= 0xd800 && cp < 0xdc00) {
				if (p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) ||
				    lo < 0xdc00 || lo > 0xdfff)
					return -EINVAL;
				p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if ((cp >= 0xdc00 && cp < 0xe000) || !cp) {
				return -EINVAL; /* a lone low surrogate, or a NUL */
			}
			d = put_utf8(d, cp);
			break;
		default:
			return -EINVAL;
		}
	}
	*d = '\0';
	*pp = p;
	return 0;
}

/* "id": a number (an optional '-' and digits) or a string, kept as JSON text for the reply. */
static int json_id(char **pp, struct api_request *req, char *err, size_t len)
{
	char *p = *pp, *str;
	size_t n;

	if (*req->id)
		return fail(err, len, "bad JSON: duplicate key \"id\"");
	if (*p == '"') {
		if (json_string(&p, &str))
			return fail(err, len, "bad JSON: malformed string");
		if (strlen(str) > 64 || api_json_append_string(req->id, sizeof(req->id), str))
			return fail(err, len, "bad JSON: \"id\" longer than 64 bytes");
		*pp = p;
		return 0;
	}
	n = strspn(p + (*p == '-'), "0123456789") + (*p == '-');
	if (n == (size_t)(*p == '-') || n > 20)
		return fail(err, len, "bad JSON: \"id\" must be a number or a string");
	memcpy(req->id, p, n);
	req->id[n] = '\0';
	*pp = p + n;
	return 0;
}

/* A flat object: "cmd" (a string), "id" (a number or a string), "path" (a string),
 * "stop"/"raw" (true/false), "port" (a number), "size" (a number or a string). */
static int parse_json(char *line, struct api_request *req, char *err, size_t len)
{
	char *p = skip_ws(line + 1), *key, *cmd = NULL, *path = NULL, port[16] = "", *size = NULL;
	char sizebuf[24];
	bool stop = false, has_stop = false, raw = false, has_raw = false;
	int ret;

	if (*p == '}')
		goto no_cmd;
	for (;;) {
		if (*p != '"' || json_string(&p, &key))
			return fail(err, len, "bad JSON: expected a key string");
		p = skip_ws(p);
		if (*p != ':')
			return fail(err, len, "bad JSON: expected ':' after \"%.32s\"", key);
		p = skip_ws(p + 1);
		if (!strcmp(key, "cmd") || !strcmp(key, "path")) {
			char **v = key[0] == 'c' ? &cmd : &path;

			if (*v)
				return fail(err, len, "bad JSON: duplicate key \"%s\"", key);
			if (*p != '"')
				return fail(err, len, "bad JSON: \"%s\" must be a string", key);
			if (json_string(&p, v))
				return fail(err, len, "bad JSON: malformed string");
		} else if (!strcmp(key, "stop") || !strcmp(key, "raw")) {
			bool *has = key[0] == 's' ? &has_stop : &has_raw;
			bool *v = key[0] == 's' ? &stop : &raw;

			if (*has)
				return fail(err, len, "bad JSON: duplicate key \"%s\"", key);
			*has = true;
			if (!strncmp(p, "true", 4)) {
				*v = true;
				p += 4;
			} else if (!strncmp(p, "false", 5)) {
				p += 5;
			} else {
				return fail(err, len, "bad JSON: \"%s\" must be true or false",
					    key);
			}
		} else if (!strcmp(key, "id")) {
			if (json_id(&p, req, err, len))
				return -EINVAL;
		} else if (!strcmp(key, "size")) {
			if (size)
				return fail(err, len, "bad JSON: duplicate key \"size\"");
			if (*p == '"') {
				if (json_string(&p, &size))
					return fail(err, len, "bad JSON: malformed string");
			} else {
				size_t n = strspn(p, "0123456789");

				if (!n || n >= sizeof(sizebuf))
					return fail(
					    err, len,
					    "bad JSON: \"size\" must be a number or a string");
				memcpy(sizebuf, p, n);
				sizebuf[n] = '\0';
				size = sizebuf;
				p += n;
			}
		} else if (!strcmp(key, "port")) {
			size_t n = strspn(p, "0123456789");

			if (*port)
				return fail(err, len, "bad JSON: duplicate key \"port\"");
			if (!n || n >= sizeof(port))
				return fail(err, len, "bad JSON: \"port\" must be a number");
			memcpy(port, p, n);
			port[n] = '\0';
			p += n;
		} else {
			return fail(err, len, "bad JSON: unknown key \"%.32s\"", key);
		}
		p = skip_ws(p);
		if (*p == '}')
			break;
		if (*p != ',')
			return fail(err, len, "bad JSON: expected ',' or '}'");
		p = skip_ws(p + 1);
	}
	if (*skip_ws(p + 1))
		return fail(err, len, "bad JSON: text after the object");
	if (!cmd)
		goto no_cmd;
	/* "stop"/"raw" are allowed for save only, "port" for vsock only. */
	if (*port) {
		if (path || strcmp(cmd, "vsock"))
			return fail(err, len, "bad JSON: \"port\" belongs to vsock only");
		path = port;
	} else if (!strcmp(cmd, "vsock")) {
		return fail(err, len, "bad JSON: vsock needs \"port\"");
	}
	if (path && !strcmp(cmd, "balloon"))
		return fail(err, len, "bad JSON: balloon takes \"size\", not \"path\"");
	if (size) {
		if (path || strcmp(cmd, "balloon"))
			return fail(err, len, "bad JSON: \"size\" belongs to balloon only");
		path = size;
	}
	ret = finish(cmd, path, has_stop || has_raw, stop, req, err, len);
	req->raw = raw && !ret;
	return ret;
no_cmd:
	return fail(err, len, "bad JSON: no \"cmd\"");
}

int api_parse_request(char *line, struct api_request *req, char *err, size_t errlen)
{
	req->json = line[0] == '{';
	req->id[0] = '\0';
	if (req->json)
		return parse_json(line, req, err, errlen);
	return parse_line(line, req, err, errlen);
}
