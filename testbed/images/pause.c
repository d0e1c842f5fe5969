/* The pod sandbox process of the test bed's real node (containerd's `sandbox_image`): it holds the
 * pod's namespaces, reaps the zombies it inherits as PID 1, and exits on SIGINT or SIGTERM.
 * Built statically with Debian's gcc and packed into an image FROM scratch (images.py). */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int signum) { _exit(128 + signum); }

static void on_child(int signum) {
    (void)signum;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(void) {
    struct sigaction stop = {.sa_handler = on_stop};
    struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
    if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
        sigaction(SIGCHLD, &child, NULL) < 0) {
        return EXIT_FAILURE;
    }
    for (;;) {
        pause();
    }
}
