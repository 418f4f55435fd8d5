/*
 * jsondoc.h - the JSON documents Nacos clients send, decoded without
 * allocating: the metadata parameter (with Nacos's legacy "k=v,k=v"
 * form), the beat of PUT /instance/beat, and the instance list of
 * /instance/metadata/batch. Built on the generic reader of nacos/json.h
 * (json_parse and friends); strings are unescaped into the caller's
 * scratch. The functions keep the json_parse_ prefix of the reader they
 * extend.
 */
#ifndef DISTRO_NACOS_JSONDOC_H
#define DISTRO_NACOS_JSONDOC_H

#include "store/types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The metadata parameter, as Nacos UtilsAndCommons.parseMetadata reads it.
 * Blank (empty or white space) or "{}" -> 0 pairs. Valid JSON must be an
 * object whose values are strings, numbers, booleans or null (non-strings
 * as their text, null as ""); anything else (a nested object or array, a
 * top-level array) -> -ERR_INVAL. Text that is not JSON is read as the
 * legacy "k=v,k=v" with Java's split rules: trailing empty pieces dropped,
 * every other piece exactly one non-empty value ("a=1,,b=2", "a=", "a=b=c"
 * -> -ERR_INVAL; "a=b=" is a=b as in Java). Duplicate keys: the last
 * value wins. Returns the pair count, -ERR_TOO_BIG over kv_max pairs,
 * JSON_TOKENS_MAX tokens or cap bytes of scratch. Keys and values point
 * into scratch. Uses 8 KiB of stack for tokens.
 */
int json_parse_meta(const char *s, size_t len, struct store_kv *kv, uint32_t kv_max, char *scratch,
                    size_t cap);

/*
 * The `beat` parameter of PUT /nacos/v1/ns/instance/beat (Nacos RsInfo
 * plus the client's BeatInfo fields):
 * {"serviceName":"G@@s","ip":"1.1.1.1","port":8080,"cluster":"c",
 *  "weight":1.0,"ephemeral":true,"metadata":{...},"scheduled":true,
 *  "period":5000,"stopped":false}.
 */
struct json_beat {
	struct store_str service, ip, cluster; /* p == NULL when absent (or null) */
	int32_t port;                          /* -1 absent */
	double weight;                         /* < 0 absent */
	int8_t ephemeral;                      /* -1 absent, 0, 1 */
	int64_t period_ms;                     /* -1 absent */
	bool has_meta;                         /* "metadata" was an object (null: absent) */
	struct store_kv *meta;                 /* points into the caller's kv array */
	uint32_t meta_n;
};

/*
 * Decodes a beat into *out. Unknown keys are ignored; a repeated key takes
 * its last value. Strings may be given as other primitives (Jackson
 * coerces); port an integer 0..65535 as number or numeric string; weight
 * a finite number >= 0 (-ERR_WEIGHT when negative); ephemeral true/false
 * (or the strings, any case); period an integer >= 0; metadata an object
 * as json_parse_meta reads JSON. 0, -ERR_INVAL (not an object, wrong
 * types) or -ERR_TOO_BIG (tokens, kv_max, scratch). *out is filled even on
 * error, but only a 0 result means it is complete. Strings point into
 * scratch. Uses 8 KiB of stack for tokens.
 */
int json_parse_beat(const char *s, size_t len, struct json_beat *out, struct store_kv *kv,
                    uint32_t kv_max, char *scratch, size_t cap);

/* One element of the `instances` parameter of PUT/DELETE /instance/metadata/batch. */
struct json_inst {
	struct store_str ip, cluster; /* "ip", "clusterName"; p == NULL when absent */
	int32_t port;                 /* -1 absent */
};

/*
 * [{"ip":"1.1.1.1","port":8080,"clusterName":"c"}, ...] into out[0, max):
 * the count, -ERR_INVAL (not an array of objects, bad port, wrong types)
 * or -ERR_TOO_BIG (more than max elements, tokens, scratch). Other keys
 * of the elements (Nacos Instance fields) are ignored. Strings point into
 * scratch. Uses 8 KiB of stack for tokens.
 */
int json_parse_instances(const char *s, size_t len, struct json_inst *out, uint32_t max,
                         char *scratch, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
