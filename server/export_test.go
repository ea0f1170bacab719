package server

// Patterns returns the patterns s's router has, in the order registered.
func Patterns(s *Server) []string { return append([]string(nil), s.patterns...) }
