// The shortest-lived program for the preload tests, like /bin/true: it
// returns at once, through exit(), so the preload library's destructor runs
// and must send its one final report.
int main() {
  return 0;
}
