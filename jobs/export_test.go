package jobs

// MockRunning reports whether a mock job of the video runs on s.
func (s *Service) MockRunning(videoID int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.running[videoID]
	return ok
}
