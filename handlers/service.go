package handlers

import "github.com/dreamseed/messenger/chat"

// Chat answers the use cases the handlers call, for the process to give them what only it
// builds (the files' storage, scanner and job queue) before it serves.
func (s *Server) Chat() *chat.Service { return s.chat }
