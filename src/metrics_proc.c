/*
 * The standard process family, read from /proc/self at scrape time: the
 * descriptors open and allowed, resident memory, start time and CPU time.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics.h"

/* /proc/stat is a line per CPU: enough for a few hundred of them. */
#define PROC_TEXT_MAX	65536

/* Read a small /proc file into buf as a string; false if it cannot be read. */
static bool
read_text(const char *path, char *buf, size_t size)
{
	size_t	len = 0;
	ssize_t	n;
	int	fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return false;
	while (len < size - 1 &&
	    (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	return len > 0;
}

/* Count our open descriptors, the directory's own one left out. */
static bool
count_fds(uint64_t *out)
{
	struct dirent	*d;
	struct stat	 st;
	DIR		*dir;
	uint64_t	 n = 0;

	/*
	 * Linux 6.2 and later give the count as the directory's size, at no
	 * cost; older kernels say 0, and the entries are counted one by one
	 * (12 ms with 10,000 descriptors).
	 */
	if (stat("/proc/self/fd", &st) == 0 && st.st_size > 0) {
		*out = (uint64_t)st.st_size;
		return true;
	}
	if ((dir = opendir("/proc/self/fd")) == NULL)
		return false;
	while ((d = readdir(dir)) != NULL)
		if (d->d_name[0] != '.')
			n++;
	closedir(dir);
	*out = n > 0 ? n - 1 : 0;
	return true;
}

/* Ticks to milliseconds. */
static uint64_t
ticks_ms(uint64_t ticks, uint64_t hz)
{
	return ticks / hz * 1000 + ticks % hz * 1000 / hz;
}

/* Read this process's figures from /proc and getrlimit. */
void
metrics_read_process(struct metrics_process *p)
{
	static char	text[PROC_TEXT_MAX];
	struct rlimit	rl;
	uint64_t	cpu, start, btime, pages;
	long		hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);

	memset(p, 0, sizeof(*p));
	if (hz <= 0 || page <= 0 || getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	p->max_fds = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur;
	if (!read_text("/proc/self/stat", text, sizeof(text)) ||
	    !metrics_parse_stat(text, &cpu, &start) ||
	    !read_text("/proc/stat", text, sizeof(text)) ||
	    !metrics_parse_btime(text, &btime) ||
	    !read_text("/proc/self/statm", text, sizeof(text)) ||
	    !metrics_parse_statm(text, &pages) ||
	    !count_fds(&p->open_fds))
		return;
	p->resident_bytes = pages * (uint64_t)page;
	p->cpu_ms = ticks_ms(cpu, (uint64_t)hz);
	p->start_time_ms = btime * 1000 + ticks_ms(start, (uint64_t)hz);
	p->valid = true;
}
