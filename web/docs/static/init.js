// Starts Swagger UI on the server's own document. It is a file rather than
// an inline script so that the page's Content-Security-Policy can keep
// scripts to this origin.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  // A pasted token survives a reload (in this origin's localStorage).
  persistAuthorization: true,
  // No badge fetched from validator.swagger.io: the page works offline and
  // the CSP allows no other origin.
  validatorUrl: null,
});
