/*
 * fuzz_stats: -stats' reader of Prometheus text (src/stats.c) on arbitrary
 * bytes, the only parser of what a metrics endpoint sends back.
 *
 * Each input is read as text (cut at its first NUL, as the client's
 * NUL-terminated buffer would be), then printed. The rendering of a known
 * metrics struct is appended and read back too: the parser must then find
 * every sample it knows, whatever garbage came before.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "stats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fail loudly, naming the broken invariant. */
#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_stats: invariant failed at %s:%d: %s\n", \
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

/* Samples metrics_render writes without the process family. */
#define KNOWN_SAMPLES	(9 + METRICS_REG_N + METRICS_REQ_N + \
	    METRICS_LOOKUP_N + METRICS_REFUSED_N + 1)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE	*devnull;
	struct metrics	 m;
	struct stats	 st;
	char		*text, rendered[8192];
	size_t		 rlen;

	if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
		abort();
	if ((text = malloc(size + 1 + sizeof(rendered))) == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	stats_parse(text, &st);
	stats_print(devnull, &st, "fuzz", 0);

	/* Known text after the garbage, on a line of its own. */
	metrics_init(&m);
	m.nodes = 7;
	m.refused[METRICS_REFUSED_PEER_CAP] = 3;
	rlen = metrics_render_buf(&m, NULL, "v", rendered, sizeof(rendered));
	CHECK(rlen < sizeof(rendered));
	size = strlen(text);
	text[size] = '\n';
	memcpy(text + size + 1, rendered, rlen + 1);
	stats_parse(text, &st);
	CHECK(st.nsamples >= KNOWN_SAMPLES);
	CHECK(st.nodes == 7);
	CHECK(st.refused[METRICS_REFUSED_PEER_CAP] == 3);
	CHECK(strcmp(st.version, "v") == 0);
	free(text);
	return 0;
}
