// The entry point of the one knit binary (it lives with the CNI module because the binary is
// first of all a CNI plugin; it is its own target and the only one that links every module).
int main() { return 0; }
