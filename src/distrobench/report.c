/*
 * report.c - merging the threads' counts; the summary and the JSON result.
 *
 * The summary is for people: one block of parameters, totals with rates,
 * the result codes seen, then one latency line per op class that occurred.
 * The JSON holds the same numbers under stable keys (docs/distrobench.md
 * lists them) for scripts such as the perf/ comparison. Both are written
 * once, after the threads have ended; nothing here is on the hot path.
 */
#include "distrobench/report.h"

#include "core/err.h"

#include <errno.h>
#include <string.h>

static const double percentiles[] = { 50, 90, 99, 99.9 };
static const char *const pct_keys[] = { "p50", "p90", "p99", "p99_9" };

#define PCTS (sizeof(percentiles) / sizeof(percentiles[0]))

static const char *const class_names[CLS_N] = {
	[CLS_REGISTER] = "register", [CLS_HEARTBEAT] = "heartbeat", [CLS_DEREGISTER] = "deregister",
	[CLS_LIST] = "list",         [CLS_PUSH] = "push",           [CLS_PING] = "ping",
};

void report_stats_init(struct bench_stats *s)
{
	memset(s, 0, sizeof(*s));
	for (int i = 0; i < CLS_N; i++)
		hist_reset(&s->lat[i]);
}

void report_stats_merge(struct bench_stats *dst, const struct bench_stats *src)
{
#define BENCH_COUNTER_ADD(name) dst->name += src->name;
	BENCH_COUNTERS(BENCH_COUNTER_ADD)
#undef BENCH_COUNTER_ADD
	for (int i = 0; i < CLS_N; i++) {
		dst->ops_by[i] += src->ops_by[i];
		hist_merge(&dst->lat[i], &src->lat[i]);
	}
	for (uint32_t i = 0; i < REPORT_CODES; i++)
		dst->err_codes[i] += src->err_codes[i];
}

void report_error(struct bench_stats *s, int code, uint64_t n)
{
	if (code < 0)
		code = -code;
	s->err_codes[code > 0 && (uint32_t)code < REPORT_CODES ? code : 0] += n;
	s->errors += n;
	if (code == ERR_BUSY)
		s->busy += n; /* shown on its own line: a busy node is not a broken one */
}

const char *report_class_name(enum op_class c)
{
	return (unsigned)c < CLS_N ? class_names[c] : "?";
}

const char *report_code_str(int code)
{
	switch (code) {
	case REPORT_E_GRPC:
		return "gRPC call failed (grpc-status, stream reset, or resultCode not 200)";
	case REPORT_E_CONN:
		return "connection refused, broken or closed by the node";
	case REPORT_E_ANSWER:
		return "malformed answer, or an answer to nothing sent";
	case REPORT_E_LIST:
		return "list of the wrong size";
	case REPORT_E_PUSH:
		return "change never pushed to a subscriber";
	case 0:
		return "other (unknown code)";
	}
	return err_str(code);
}

double report_error_rate(const struct bench_stats *s)
{
	if (s->ops == 0)
		return s->errors ? 1.0 : 0.0;
	return (double)s->errors / (double)s->ops;
}

static const char *mode_str(const struct bench_config *c, char *buf, size_t len)
{
	if (c->interval_ms)
		snprintf(buf, len,
		         "open loop, each instance every %u ms (at most %u frames in "
		         "flight per connection)",
		         c->interval_ms, c->pipeline);
	else if (c->rate > 0)
		snprintf(buf, len,
		         "open loop, %.0f %s/s (at most %u frames in flight per connection)",
		         c->rate, c->workload == WL_SUBSCRIBE ? "changes" : "ops", c->pipeline);
	else
		snprintf(buf, len, "closed loop, pipeline %u", c->pipeline);
	return buf;
}

static void print_targets(FILE *out, const struct bench_config *c)
{
	for (uint32_t i = 0; i < c->targets_n; i++) {
		const struct bench_target *t = &c->targets[i];

		fprintf(out, "%s%s%s%s:%u", i ? "," : "", strchr(t->host, ':') ? "[" : "", t->host,
		        strchr(t->host, ':') ? "]" : "", t->port);
	}
}

void report_summary(FILE *out, const struct bench_config *c, const struct report_run *r)
{
	const struct bench_stats *s = &r->total;
	double secs = r->seconds > 0 ? r->seconds : 1;
	char mode[160];
	struct hist all;
	int kinds = 0;

	fprintf(out, "distrobench %s: ", args_workload_name(c->workload));
	print_targets(out, c);
	if (c->proto == PROTO_GRPC)
		fprintf(out, " (gRPC port %u)", c->grpc_port);
	fprintf(out, ", %u thread%s, %u connection%s, batch %u, %s\n", c->threads,
	        c->threads == 1 ? "" : "s", c->conns, c->conns == 1 ? "" : "s", c->batch,
	        mode_str(c, mode, sizeof(mode)));
	switch (c->workload) {
	case WL_LIST:
		fprintf(out, "population   %u services of %u instances\n", c->services,
		        c->list_size);
		break;
	case WL_SUBSCRIBE:
		fprintf(out,
		        "population   %u services of %u instances, %u subscribers each (%llu "
		        "subscriptions)\n",
		        c->services, c->list_size, c->subscribers,
		        (unsigned long long)r->subscriptions);
		break;
	case WL_PING:
		fprintf(out, "population   none (PING frames)\n");
		break;
	case WL_MIX:
		fprintf(out, "population   %u instances in %u services, mix %u:%u:%u\n",
		        c->instances, c->services, c->mix[0], c->mix[1], c->mix[2]);
		break;
	default:
		fprintf(out, "population   %u instances in %u services\n", c->instances,
		        c->services);
		break;
	}
	if (r->setup_ops || r->setup_errors)
		fprintf(out, "setup        %llu instances registered in %.2f s, %llu errors\n",
		        (unsigned long long)r->setup_ops, r->setup_seconds,
		        (unsigned long long)r->setup_errors);
	fprintf(out, "window       %.2f s after %.2f s of warm-up\n", r->seconds, c->warmup_s);
	fprintf(out, "frames       %llu (%.0f/s)\n", (unsigned long long)s->frames,
	        (double)s->frames / secs);
	fprintf(out, "ops          %llu (%.0f/s)\n", (unsigned long long)s->ops,
	        (double)s->ops / secs);
	for (int i = 0; i < CLS_N; i++)
		if (s->ops_by[i])
			fprintf(out, "  %-10s %llu (%.0f/s)\n", class_names[i],
			        (unsigned long long)s->ops_by[i], (double)s->ops_by[i] / secs);
	fprintf(out, "results      created %llu, changed %llu, unchanged %llu\n",
	        (unsigned long long)s->created, (unsigned long long)s->changed,
	        (unsigned long long)s->same);
	if (s->ops_by[CLS_LIST] || s->pushes)
		fprintf(out, "lists        %llu instances in lists, %llu pushes\n",
		        (unsigned long long)s->list_views, (unsigned long long)s->pushes);
	if (c->workload == WL_SUBSCRIBE)
		fprintf(out,
		        "changes      %llu (%.1f/s), %llu deliveries expected, %llu seen (%llu "
		        "untimed)\n",
		        (unsigned long long)s->changes, (double)s->changes / secs,
		        (unsigned long long)(s->changes * c->subscribers),
		        (unsigned long long)s->deliveries, (unsigned long long)s->untimed);
	fprintf(out, "errors       %llu (rate %.6f, max %.6f)%s\n", (unsigned long long)s->errors,
	        r->error_rate, c->max_error_rate, r->exit_code ? "  FAILED" : "");
	for (uint32_t i = 0; i < REPORT_CODES; i++)
		if (s->err_codes[i])
			fprintf(out, "  %5llu x code %u: %s\n", (unsigned long long)s->err_codes[i],
			        i, report_code_str((int)i));
	if (s->busy)
		fprintf(out,
		        "busy         %llu ops refused as busy by the node (code 29; counted in "
		        "errors, not retried)\n",
		        (unsigned long long)s->busy);
	if (s->unsent)
		fprintf(out,
		        "behind       %llu frames due in the window were never sent (pipeline "
		        "full: "
		        "the node could not keep up with the rate)\n",
		        (unsigned long long)s->unsent);
	if (s->conns_lost)
		fprintf(out, "connections  %llu lost\n", (unsigned long long)s->conns_lost);
	fprintf(out, "client cpu   user %.2f s, system %.2f s (%.2f us per op)\n", r->cpu_user_s,
	        r->cpu_sys_s, s->ops ? (r->cpu_user_s + r->cpu_sys_s) * 1e6 / (double)s->ops : 0.0);
	fprintf(out, "latency us   %12s %8s %8s %8s %8s %8s %9s\n", "count", "p50", "p90", "p99",
	        "p99.9", "max", "mean");
	hist_reset(&all);
	for (int i = 0; i < CLS_N; i++) {
		const struct hist *h = &s->lat[i];

		if (h->n == 0)
			continue;
		if (i != CLS_PUSH)
			hist_merge(&all, h);
		fprintf(out, "  %-10s %12llu", class_names[i], (unsigned long long)h->n);
		for (uint32_t k = 0; k < PCTS; k++)
			fprintf(out, " %8llu",
			        (unsigned long long)hist_percentile(h, percentiles[k]));
		fprintf(out, " %8llu %9.1f\n", (unsigned long long)h->max, hist_mean(h));
	}
	/* Several kinds of frames (mix, churn): also all of them together. */
	for (int i = 0; i < CLS_PUSH; i++)
		kinds += s->lat[i].n > 0;
	if (kinds > 1) {
		fprintf(out, "  %-10s %12llu", "frames", (unsigned long long)all.n);
		for (uint32_t k = 0; k < PCTS; k++)
			fprintf(out, " %8llu",
			        (unsigned long long)hist_percentile(&all, percentiles[k]));
		fprintf(out, " %8llu %9.1f\n", (unsigned long long)all.max, hist_mean(&all));
	}
	if (c->workload == WL_SUBSCRIBE)
		fprintf(out,
		        "(push: from sending a change to each subscriber's PUSH showing it)\n");
	else if (c->rate > 0 || c->interval_ms)
		fprintf(out, "(from the intended send time of each frame: queueing included)\n");
}

static void json_hist(FILE *f, const struct hist *h)
{
	fprintf(f, "{\"count\": %llu, \"min\": %llu", (unsigned long long)h->n,
	        (unsigned long long)(h->n ? h->min : 0));
	for (uint32_t k = 0; k < PCTS; k++)
		fprintf(f, ", \"%s\": %llu", pct_keys[k],
		        (unsigned long long)hist_percentile(h, percentiles[k]));
	fprintf(f, ", \"max\": %llu, \"mean\": %.1f}", (unsigned long long)h->max, hist_mean(h));
}

/* Host names are checked by getaddrinfo, not by us: escape what JSON needs. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

int report_json(const char *path, const struct bench_config *c, const struct report_run *r)
{
	const struct bench_stats *s = &r->total;
	double secs = r->seconds > 0 ? r->seconds : 1;
	FILE *f = fopen(path, "w");
	struct hist all;
	bool first;
	int rc = 0;

	if (f == NULL)
		return -errno;
	fprintf(f,
	        "{\n  \"tool\": \"distrobench\",\n  \"params\": {\"workload\": \"%s\", "
	        "\"proto\": \"%s\", \"grpc_port\": %u, \"servers\": [",
	        args_workload_name(c->workload), c->proto == PROTO_GRPC ? "grpc" : "binary",
	        c->grpc_port);
	for (uint32_t i = 0; i < c->targets_n; i++) {
		char buf[ARGS_HOST_MAX + 16];

		snprintf(buf, sizeof(buf), "%s%s%s:%u", strchr(c->targets[i].host, ':') ? "[" : "",
		         c->targets[i].host, strchr(c->targets[i].host, ':') ? "]" : "",
		         c->targets[i].port);
		fprintf(f, "%s", i ? ", " : "");
		json_str(f, buf);
	}
	fprintf(f,
	        "], \"threads\": %u, \"connections\": %u, \"pipeline\": %u, \"batch\": %u, "
	        "\"instances\": %u, \"services\": %u, \"list_size\": %u, \"subscribers\": %u, "
	        "\"mix\": [%u, %u, %u], \"interval_ms\": %u, \"rate\": %.3f, \"tick_us\": %u, "
	        "\"open_loop\": %s, "
	        "\"duration_s\": %.3f, \"warmup_s\": %.3f, \"max_error_rate\": %g, \"prefix\": ",
	        c->threads, c->conns, c->pipeline, c->batch, c->instances, c->services,
	        c->list_size, c->subscribers, c->mix[0], c->mix[1], c->mix[2], c->interval_ms,
	        c->rate, c->tick_us, (c->rate > 0 || c->interval_ms) ? "true" : "false",
	        c->duration_s, c->warmup_s, c->max_error_rate);
	json_str(f, c->prefix);
	fprintf(f,
	        "},\n  \"seconds\": %.6f,\n  \"setup\": {\"seconds\": %.3f, \"ops\": %llu, "
	        "\"errors\": %llu},\n",
	        r->seconds, r->setup_seconds, (unsigned long long)r->setup_ops,
	        (unsigned long long)r->setup_errors);
	fprintf(f, "  \"totals\": {");
	first = true;
#define BENCH_COUNTER_JSON(name)                                                                   \
	fprintf(f, "%s\"%s\": %llu", first ? "" : ", ", #name, (unsigned long long)s->name);       \
	first = false;
	BENCH_COUNTERS(BENCH_COUNTER_JSON)
#undef BENCH_COUNTER_JSON
	fprintf(f, ", \"subscriptions\": %llu},\n", (unsigned long long)r->subscriptions);
	fprintf(f, "  \"ops_per_sec\": %.1f,\n  \"frames_per_sec\": %.1f,\n", (double)s->ops / secs,
	        (double)s->frames / secs);
	fprintf(f, "  \"ops_by_class\": {");
	first = true;
	for (int i = 0; i < CLS_N; i++) {
		if (s->ops_by[i] == 0)
			continue;
		fprintf(f, "%s\"%s\": {\"ops\": %llu, \"per_sec\": %.1f}", first ? "" : ", ",
		        class_names[i], (unsigned long long)s->ops_by[i],
		        (double)s->ops_by[i] / secs);
		first = false;
	}
	fprintf(f, "},\n  \"errors\": {\"count\": %llu, \"rate\": %.9f, \"by_code\": {",
	        (unsigned long long)s->errors, r->error_rate);
	first = true;
	for (uint32_t i = 0; i < REPORT_CODES; i++) {
		if (s->err_codes[i] == 0)
			continue;
		fprintf(f, "%s\"%u\": {\"count\": %llu, \"message\": ", first ? "" : ", ", i,
		        (unsigned long long)s->err_codes[i]);
		json_str(f, report_code_str((int)i));
		fputc('}', f);
		first = false;
	}
	fprintf(f, "}},\n  \"latency_us\": {");
	first = true;
	hist_reset(&all);
	for (int i = 0; i < CLS_N; i++) {
		if (s->lat[i].n == 0)
			continue;
		if (i != CLS_PUSH)
			hist_merge(&all, &s->lat[i]);
		fprintf(f, "%s\"%s\": ", first ? "" : ", ", class_names[i]);
		json_hist(f, &s->lat[i]);
		first = false;
	}
	fprintf(f, "%s\"frames\": ", first ? "" : ", ");
	json_hist(f, &all);
	fprintf(f, "},\n  \"client_cpu_s\": {\"user\": %.3f, \"system\": %.3f},\n", r->cpu_user_s,
	        r->cpu_sys_s);
	fprintf(f, "  \"exit_code\": %d\n}\n", r->exit_code);
	if (ferror(f))
		rc = -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	return rc;
}
